"""``medcl evaluate --app dbsam``: box-prompted DB-SAM on a card's labelled cases (entry point
``medcl.evaluators``).

Cards and their layouts under ``--root``: the Medical Segmentation Decathlon cards
(``msd_task01_braintumour`` ... ``msd_task10_colon``) and ``flare22`` -- the nnU-Net/MSD layout
``imagesTr/`` + ``labelsTr/`` (``--root`` is the task folder, or its parent holding one
``Task*`` folder). The test labels of MSD are withheld, so evaluation runs on the labelled
training cases: ``--split test`` keeps every fifth case (sorted by name: case 4, 9, ...),
``--split all`` all of them.

Per case and label: 3-D Dice and both NSDs, the protocol of ``medcl dbsam evaluate``
(:mod:`medcl.dbsam.evaluate`: one box per slice holding the label, from the reference).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medcl.io.evaluate import Case, CaseArtefacts, Evaluator, card_root_error

COLUMNS = ["label", "dice", "nsd_paper", "nsd_2mm", "pred_voxels", "truth_voxels", "slices"]


def _task_root(card: Any, root: Path | None) -> Path:
    if root is None or not root.is_dir():
        raise card_root_error(card, root, "imagesTr/ and labelsTr/ (MSD/nnU-Net layout)")
    if (root / "imagesTr").is_dir():
        return root
    tasks = sorted(p for p in root.iterdir() if p.is_dir() and (p / "imagesTr").is_dir())
    if len(tasks) == 1:
        return tasks[0]
    raise card_root_error(card, root, "imagesTr/ and labelsTr/ (MSD/nnU-Net layout)"
                          + (f"; several task folders ({', '.join(p.name for p in tasks)}): "
                             "pass one" if tasks else ""))


def find_cases(card: Any, root: Path | None, options: dict) -> list[Case]:
    from medcl.io.cases import list_cases

    task = _task_root(card, root)
    if not (task / "labelsTr").is_dir():
        raise card_root_error(card, task, "labelsTr/ next to imagesTr/")
    found = [c for c in list_cases(task / "imagesTr", task / "labelsTr")
             if not c[0].startswith("._")]  # macOS resource files of some archive copies
    return [Case(cid, {"image": str(img), "label": str(lab)},
                 split="test" if i % 5 == 4 else "train")
            for i, (cid, img, lab) in enumerate(found)]


def load(model: Path | None, options: dict) -> Any:
    from .harness import load_run

    return load_run(model)


def score(state: Any, case: Case, art: CaseArtefacts) -> list[dict]:
    import numpy as np

    from .data import load_case
    from .evaluate import scores
    from .harness import _label_codes
    from .infer import SliceSegmenter, predict_label

    cfg, net = state
    label = Path(case.files["label"])
    data = load_case(Path(case.files["image"]), label, cfg)
    seg = SliceSegmenter(net, data)
    truth_all = data.label_volume()  # (Z, H, W) in RAS slice order
    spacing = (data.spacing[2], data.spacing[0], data.spacing[1])
    pred_all = np.zeros(truth_all.shape, np.uint8)
    rows = []
    for code in _label_codes(truth_all, cfg, label):
        pred = predict_label(seg, code, cfg.eval_margin)
        truth = truth_all == code
        pred_all[pred.astype(bool) & (pred_all == 0)] = code
        rows.append({"label": code, **scores(pred, truth, spacing, cfg.nsd_tolerance_mm),
                     "pred_voxels": int(pred.sum()), "truth_voxels": int(truth.sum()),
                     "slices": int(truth.any(axis=(1, 2)).sum())})
    if data.can is not None:  # (Z, H=y, W=x) slices -> RAS (X, Y, Z)
        image = data.can.forward(data.vol.data)
        art.save(image, np.transpose(pred_all, (2, 1, 0)),
                 np.transpose(truth_all, (2, 1, 0)), data.can.zooms)
    return rows


EVALUATOR = Evaluator(name="dbsam", columns=COLUMNS,
                      score_columns=["dice", "nsd_paper", "nsd_2mm"], find_cases=find_cases,
                      load=load, score=score, cards=["msd_*", "flare22"])
