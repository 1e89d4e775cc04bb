"""``medcl evaluate --app sepclr`` on the digits-on-textures layout (attributes as units)."""

from __future__ import annotations

import pandas as pd
import pytest

SMALL = ["--epochs", "1", "--batch-size", "16", "--encoder", "small", "--widths", "4,8,8,8",
         "--common-dim", "4", "--salient-dim", "4"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from medcl.sepclr.textures import write_digits_on_textures

    return write_digits_on_textures(tmp_path_factory.mktemp("dot") / "data", n_background=40,
                                    n_target=40, size=32, seed=0)


def test_attributes_as_units(dataset, tmp_path, medcl_cli):
    run = tmp_path / "run"
    code, _, err = medcl_cli(["sepclr", "fit", "--background", dataset / "background",
                              "--target", dataset / "target", "--out", run, *SMALL])
    assert code == 0, err
    out = tmp_path / "ev"
    code, _, err = medcl_cli(["evaluate", "--card", "digits_on_textures", "--root", dataset,
                              "--app", "sepclr", "--model", run, "--out", out,
                              "--progress", "quiet"])
    assert code == 0, err
    table = pd.read_csv(out / "cases.csv")
    assert list(table.case_id.unique()) == ["texture", "digit"]
    assert set(table.space) == {"common", "salient"}
    assert table.accuracy.between(0, 1).all()
    # no attributes table: one line naming it
    (tmp_path / "bare" / "background").mkdir(parents=True)
    (tmp_path / "bare" / "target").mkdir()
    code, _, err = medcl_cli(["evaluate", "--card", "digits_on_textures", "--root",
                              tmp_path / "bare", "--app", "sepclr", "--model", run, "--out",
                              tmp_path / "e2"])
    assert code == 2 and "attributes.csv" in err
