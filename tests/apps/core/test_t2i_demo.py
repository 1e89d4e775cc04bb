"""The ``core-t2i`` demo step, called directly at a reduced size."""

import medcl.core.t2i_demo as demo


def test_demo_step_writes_grids(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_SHAPES", 48)
    monkeypatch.setattr(demo, "DEMO_TEXTS", ("a large red circle", "a blue square"))
    text = demo.STEP.run(tmp_path, 1, 0)
    assert text.startswith("## core-t2i")
    assert (tmp_path / "gan" / "samples.png").exists()
    for k in range(2):
        assert f"generate_{k}/grid.png" in text and (tmp_path / f"generate_{k}" /
                                                      "grid.png").exists()
    assert demo.STEP.name == "core-t2i"
