"""``medcl evaluate --app pirads``: PI-RADS zones of a card's T2 cases (entry point
``medcl.evaluators``).

Cards and their layouts under ``--root``:

``prostate158``
    One folder per case (optionally under ``train/`` or ``test/``, which become the split)
    holding ``t2.nii.gz`` -- or ``t2/``, a DICOM series folder -- and the reader's anatomy
    labels ``t2_anatomy_reader1.nii.gz`` (``--option label_file=NAME`` for another reader).
    Label codes are remapped with the card's ``-> medcl N`` entries (1 TZ -> 2, 2 PZ -> 1).
Any other ``pirads`` card
    The nnU-Net/MSD layout ``imagesTr/`` + ``labelsTr/`` with the card's label map.

Per case and zone: Dice, MASD and HD95 (:func:`medcl.pirads.metrics.zone_metrics`); zones the
card does not label are NaN (not Dice 0), as in ``medcl pirads evaluate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medcl.io.evaluate import Case, CaseArtefacts, Evaluator, card_root_error

COLUMNS = ["zone", "zone_name", "dice", "masd", "hd95", "pred_voxels", "truth_voxels",
           "labelled"]


def find_cases(card: Any, root: Path | None, options: dict) -> list[Case]:
    from medcl.io.cases import list_cases

    if card.app != "pirads":
        raise card_root_error(card, root, f"card {card.id} is for the {card.app} app")
    if root is None or not root.is_dir():
        raise card_root_error(card, root, "the folder holding the card's cases")
    label_name = options.get("label_file", "t2_anatomy_reader1.nii.gz")
    cases: list[Case] = []
    if (root / "imagesTr").is_dir():
        labels = root / "labelsTr"
        for cid, img, lab in list_cases(root / "imagesTr", labels if labels.is_dir() else None):
            cases.append(Case(cid, {"t2": str(img), "label": str(lab or ""), "card": card.id}))
        return cases
    for t2 in sorted([*root.rglob("t2.nii.gz"), *root.rglob("t2.nii"),
                      *(p for p in root.rglob("t2") if p.is_dir())]):
        folder = t2.parent
        label = folder / label_name
        split = next((p for p in folder.relative_to(root).parts[:-1]
                      if p in ("train", "test", "valid")), "all")
        cases.append(Case(folder.name, {"t2": str(t2), "label": str(label) if label.exists()
                                        else "", "card": card.id}, split=split))
    if not cases:
        raise card_root_error(card, root, f"no case folder with t2.nii.gz (or t2/) and "
                              f"{label_name}")
    return cases


def load(model: Path | None, options: dict) -> Any:
    from .harness import load_run

    return load_run(model)


def score(state: Any, case: Case, art: CaseArtefacts) -> list[dict]:
    import numpy as np

    from medcl.io import InputFileError
    from medcl.io.nifti import Canonical

    from .infer import predict_zones
    from .labels import card_label_map, read_case
    from .metrics import zone_metrics

    cfg, net = state
    label_map = card_label_map(case.files["card"])
    if not case.files.get("label"):
        raise InputFileError("case has no label file", path=case.files["t2"],
                             fix="add the reader's anatomy labels next to the T2 volume")
    vol, lab = read_case(case.files["t2"], case.files["label"], label_map=label_map)
    truth = np.asarray(label_map.apply(lab.data))
    pred = predict_zones(net, cfg, vol)
    can = Canonical.of(vol)
    art.save(can.forward(vol.data), can.forward(pred), can.forward(truth), can.zooms)
    rows = zone_metrics(pred, truth, vol.spacing, labelled=label_map.zones)
    return [{k: r.get(k) for k in COLUMNS} for r in rows]


EVALUATOR = Evaluator(name="pirads", columns=COLUMNS, score_columns=["dice", "masd", "hd95"],
                      find_cases=find_cases, load=load, score=score,
                      cards=["prostate158", "prostatex_zones_meyer2019"])
