"""``medcl evaluate --app sepclr``: linear probes of a card's attributes from a trained run's
common and salient spaces (entry point ``medcl.evaluators``).

Layout under ``--root`` (what ``write_digits_on_textures`` writes and the CelebA card's steps
produce): ``background/`` and ``target/`` image folders and an attributes table
(``--attributes FILE``, default ``ROOT/attributes.csv``, columns ``file, group`` and one
column per attribute). A unit is one attribute: its probes (logistic regression, held-out
share ``--option test_fraction=0.3``) from each space and group, as ``medcl sepclr evaluate``
scores them; the representations are computed once per process and shared by its units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medcl.io.evaluate import Case, CaseArtefacts, Evaluator, card_root_error

COLUMNS = ["role", "group", "space", "accuracy", "chance", "n_train", "n_test"]


def find_cases(card: Any, root: Path | None, options: dict) -> list[Case]:
    import pandas as pd

    if card.app != "sepclr":
        raise card_root_error(card, root, f"card {card.id} is for the {card.app} app")
    if root is None or not (root / "background").is_dir() or not (root / "target").is_dir():
        raise card_root_error(card, root, "background/ and target/ image folders")
    attributes = Path(options.get("attributes") or root / "attributes.csv")
    if not attributes.is_file():
        raise card_root_error(card, root, f"the attributes table {attributes.name} "
                              "(or pass --attributes FILE)")
    columns = [c for c in pd.read_csv(attributes, nrows=1).columns if c not in ("file", "group")
               and not c.endswith("_name")]
    files = {"background": str(root / "background"), "target": str(root / "target"),
             "attributes": str(attributes),
             "test_fraction": str(options.get("test_fraction", 0.3))}
    return [Case(c, {**files, "attribute": c}) for c in columns]


def load(model: Path | None, options: dict) -> Any:
    from .train import load_run

    cfg, net = load_run(model)
    return {"cfg": cfg, "model": net, "probes": {}}


def score(state: Any, case: Case, art: CaseArtefacts) -> list[dict]:
    from .data import load_contrastive, load_group_attributes
    from .evaluate import probe_table, represent
    from .harness import HOLDOUT_SEED, holdout_split

    f = case.files
    key = (f["background"], f["target"], f["attributes"], f["test_fraction"])
    if key not in state["probes"]:
        cfg = state["cfg"]
        data = load_contrastive(Path(f["background"]), Path(f["target"]), size=cfg.image_size,
                                channels=cfg.channels, nifti_slice=cfg.nifti_slice)
        attrs = load_group_attributes(Path(f["attributes"]), data)
        is_target = data.is_target.numpy()
        train_idx, test_idx = holdout_split(is_target, float(f["test_fraction"]), HOLDOUT_SEED)
        reps = represent(state["model"], data.images)
        state["probes"] = {key: probe_table(reps, attrs, is_target, train_idx, test_idx)}
    table = state["probes"][key]
    rows = table[table.attribute == f["attribute"]]
    return [{c: r[c] for c in COLUMNS} for r in rows.to_dict("records")]


EVALUATOR = Evaluator(name="sepclr", columns=COLUMNS, score_columns=["accuracy"],
                      find_cases=find_cases, load=load, score=score,
                      cards=["digits_on_textures", "celeba_accessories"])
