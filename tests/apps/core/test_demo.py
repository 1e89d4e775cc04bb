"""The ``core-image`` demo step, run directly."""

from medcl.core.demo import STEP


def test_demo_step_runs_and_returns_a_section(tmp_path):
    assert STEP.name == "core-image"
    section = STEP.run(tmp_path / "core-image", 1, 0)
    assert section.startswith("## core-image")
    assert "![accuracy per method](compare.png)" in section
    assert "| simclr | 1 |" in section and "| supcon | 1 |" in section
    assert (tmp_path / "core-image" / "compare.png").exists()
