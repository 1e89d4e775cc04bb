"""Per-dataset SepCLR settings read from a data card (``medcl sepclr fit --card ID``).

A card of app ``sepclr`` holds, under ``protocol.sepclr``, what the authors' scripts
(github.com/neurospin-projects/2024_rlouiset_sep_clr, ``*/sep_clr_k-jem.py``,
``*/data_augmentation.py``, ``*/evaluation_script.py``; Louiset et al. 2024, ICLR,
arXiv:2402.11928) set per dataset::

    protocol:
      sepclr:
        loss_weights: {common: 1, salient: 1000, regulariser: 1000, mi: 10}   # required
        augment: {crop_scale: [0.2, 1.0], crop_size: 24, hflip: 0.5, vflip: 0.0,
                  rotation: 45, jitter: [0.4, 0.4, 0.4, 0.1], jitter_p: 0.8,
                  grayscale_p: 0.2}                                          # all optional
        probe_metric: accuracy            # or balanced_accuracy
        pretrained: imagenet              # or none: what the authors started from (a note)

The four loss weights multiply, in the authors' scripts, the common term, the salient term
(``salient_term_beta``), the information-less regulariser (``salient_reg_beta``) and the kernel
joint entropy (``jem_lambda``): CIFAR-10 + MNIST and CelebA 1 / 1000 / 1000 / 10, CheXpert
1 / 1 / 10 / 10, ODIR 1 / 1 / 100 / 10.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .config import SepCLRConfig

WEIGHT_FIELDS = {"common": "common_weight", "salient": "salient_weight",
                 "regulariser": "regulariser_weight", "mi": "mi_weight"}
AUGMENT_FIELDS = ("crop_size", "hflip", "vflip", "rotation", "jitter", "jitter_p",
                  "grayscale_p")

def protocol_schema() -> dict[str, Any]:
    """JSON Schema of ``protocol.sepclr``: the one in the data-card schema
    (``medcl.io.cards.CARD_SCHEMA``), which ``medcl cards validate`` checks too."""
    from medcl.io.cards import CARD_SCHEMA

    return CARD_SCHEMA["properties"]["protocol"]["properties"]["sepclr"]


def sepclr_protocol(card_id: str):
    """The card ``card_id`` and its validated ``protocol.sepclr`` mapping.

    Raises
    ------
    medcl.io.DataCardError
        If the card is unknown or invalid, is not a SepCLR card, or its ``protocol.sepclr`` is
        missing or malformed; the message names the card file and the fix.
    """
    from jsonschema import Draft202012Validator

    from medcl.io import DataCardError
    from medcl.io.cards import get_card

    card = get_card(card_id)
    if card.app != "sepclr" or not isinstance(card.protocol.get("sepclr"), dict):
        raise DataCardError(f"card {card_id!r} has no SepCLR settings (protocol.sepclr)",
                            path=card.path, fix="pick a SepCLR card (`medcl cards list`: app "
                            "sepclr), or add protocol.sepclr.loss_weights to this one")
    spec = card.protocol["sepclr"]
    errors = sorted(Draft202012Validator(protocol_schema()).iter_errors(spec),
                    key=lambda e: list(e.path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path)
        raise DataCardError(f"protocol.sepclr{'.' + where if where else ''}: "
                            f"{errors[0].message}", path=card.path,
                            fix="correct protocol.sepclr as described in medcl.sepclr.cards")
    return card, spec


def apply_card(cfg: SepCLRConfig, card_id: str) -> SepCLRConfig:
    """``cfg`` with the loss weights, augmentations and probe metric of card ``card_id``
    (augmentations the card leaves out keep ``cfg``'s values); ``cfg.card`` records the id."""
    _, spec = sepclr_protocol(card_id)
    changes: dict[str, Any] = {WEIGHT_FIELDS[k]: float(v)
                               for k, v in spec["loss_weights"].items()}
    augment = spec.get("augment", {})
    if "crop_scale" in augment:
        changes["crop_scale"], changes["crop_scale_max"] = map(float, augment["crop_scale"])
    changes |= {k: augment[k] for k in AUGMENT_FIELDS if k in augment}
    if "probe_metric" in spec:
        changes["probe_metric"] = spec["probe_metric"]
    return replace(cfg, card=card_id, **changes)
