"""Label codes of other datasets mapped onto the PI-RADS zone codes on load.

Our codes (Meyer et al., ISBI 2019; Das, Ghosh, Stober, arXiv:2309.12970): 0 background, 1 PZ,
2 TZ, 3 DPU, 4 AFS. Public datasets use other codes and often label only some zones
(Prostate158 and the Medical Segmentation Decathlon's Task05 have TZ and PZ only). A
:class:`LabelMap` says, for every code a dataset uses, which of our codes it becomes; it comes
from ``--label-map "1:2,2:1"`` (source:target pairs) or from a data card's ``labels`` entries,
which end in ``-> medcl N`` (``--card prostate158``).

A map lists *every* non-zero source code: a code it does not list is an unknown code (an error
naming the file), never silently kept, so a map also says which of our zones the dataset labels
(the non-zero targets). Zones outside that set are "not labelled" and are reported as NaN by
the evaluation rather than as Dice 0.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from medcl.io import ConfigError, InputFileError

from .zones import ZONE_CODES, ZONE_LEGEND

__all__ = ["IDENTITY", "ZONE_CODES", "LabelMap", "card_label_map", "parse_label_map",
           "read_case", "resolve_label_map"]

_CARD_TARGET = re.compile(r"->\s*medcl\s+(\d+)\s*$")


@dataclass(frozen=True)
class LabelMap:
    """Source code -> zone code, with where the mapping came from.

    Attributes
    ----------
    mapping : dict of int to int
        Every code the dataset uses (0 may be left out: it always stays background).
    origin : str
        Where the map came from, for reports (``"--label-map 1:2,2:1"``, ``"card prostate158"``).
    """

    mapping: dict[int, int]
    origin: str = "identity"
    _lut: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        full = {0: 0, **{int(k): int(v) for k, v in self.mapping.items()}}
        for src, dst in full.items():
            if src < 0:
                raise ConfigError(f"label map {self.origin}: negative source code {src}",
                                  fix="give non-negative label codes")
            if dst not in ZONE_CODES:
                raise ConfigError(f"label map {self.origin}: target {dst} of code {src} is not a "
                                  f"zone code ({ZONE_LEGEND})",
                                  fix="map every source code onto 0-4")
        if full[0] != 0:
            raise ConfigError(f"label map {self.origin}: code 0 must stay background",
                              fix="leave 0 out of the map or write 0:0")
        lut = np.full(max(full) + 1, -1, dtype=np.int64)
        for src, dst in full.items():
            lut[src] = dst
        object.__setattr__(self, "mapping", full)
        object.__setattr__(self, "_lut", lut)

    @property
    def zones(self) -> tuple[int, ...]:
        """Our zone codes (1-4) that the dataset labels, sorted."""
        return tuple(sorted({d for d in self.mapping.values() if d > 0}))

    def check(self, codes, path: str | os.PathLike[str] | None = None) -> None:
        """Raise :class:`medcl.io.InputFileError` naming ``path`` if a code is not in the map."""
        unknown = sorted({int(c) for c in np.unique(np.asarray(codes))} - set(self.mapping))
        if unknown:
            raise InputFileError(
                f"has unknown label code(s) {unknown}; known: {sorted(self.mapping)} "
                f"({self.origin})",
                path=path,
                fix=f"remap the labels to {ZONE_LEGEND}, or pass --label-map "
                "SRC:DST,... / --card ID with the dataset's codes",
            )

    def apply(self, labels):
        """Remap ``labels`` (numpy array or torch tensor of codes already :meth:`check`-ed)."""
        if isinstance(labels, np.ndarray):
            return self._lut[labels.astype(np.int64)]
        import torch

        lut = torch.as_tensor(self._lut, device=labels.device)
        return lut[labels.long()]


IDENTITY = LabelMap({1: 1, 2: 2, 3: 3, 4: 4}, "identity")
"""Labels already in our codes (all four zones labelled)."""


def parse_label_map(text: str) -> LabelMap:
    """Parse ``"1:2,2:1"`` (comma-separated ``source:target`` pairs) into a :class:`LabelMap`.

    Raises
    ------
    medcl.io.ConfigError
        Malformed pairs, a source code given twice, or targets outside 0-4.
    """
    mapping: dict[int, int] = {}
    for item in (t.strip() for t in text.split(",")):
        m = re.fullmatch(r"(\d+)\s*:\s*(\d+)", item)
        if m is None:
            raise ConfigError(f"--label-map: cannot read {item!r}",
                              fix="write source:target pairs, e.g. --label-map 1:2,2:1")
        src, dst = int(m.group(1)), int(m.group(2))
        if src in mapping:
            raise ConfigError(f"--label-map: code {src} is given twice",
                              fix="give each source code once")
        mapping[src] = dst
    return LabelMap(mapping, f"--label-map {text}")


def card_label_map(card_id: str) -> LabelMap:
    """The mapping recorded in a PI-RADS data card's ``labels`` (entries ``... -> medcl N``).

    Raises
    ------
    medcl.io.DataCardError
        Unknown card id or invalid card.
    medcl.io.ConfigError
        The card is not a PI-RADS card or a non-zero code has no ``-> medcl N`` target.
    """
    from medcl.io import get_card

    card = get_card(card_id)
    if card.app != "pirads":
        raise ConfigError(f"data card {card_id!r} is for the {card.app} app, not pirads",
                          fix="pass a pirads card (`medcl cards list`)")
    mapping: dict[int, int] = {}
    for code, name in card.labels.items():
        src = int(code)
        m = _CARD_TARGET.search(str(name))
        if m is None:
            if src == 0:
                continue
            raise ConfigError(f"data card {card_id!r}: label {src} ({name!r}) has no "
                              "'-> medcl N' target", path=card.path,
                              fix="pass the mapping explicitly with --label-map SRC:DST,...")
        mapping[src] = int(m.group(1))
    return LabelMap(mapping, f"card {card_id}")


def resolve_label_map(label_map: str | None, card: str | None) -> LabelMap:
    """The map of ``--label-map`` or ``--card`` (not both); :data:`IDENTITY` when neither."""
    if label_map and card:
        raise ConfigError("give --label-map or --card, not both",
                          fix="drop one of the two flags")
    if label_map:
        return parse_label_map(label_map)
    if card:
        return card_label_map(card)
    return IDENTITY


def read_case(image: str | os.PathLike[str], label: str | os.PathLike[str] | None = None, *,
              channel: int | None = None, label_map: LabelMap = IDENTITY):
    """Read and check one case the way training and evaluation both do.

    The image goes through :func:`medcl.io.nifti.read_volume` (missing, corrupt, 4-D without
    ``channel``, NaN or infinite values), the label through :func:`medcl.io.nifti.read_labels`
    (NaN, non-integer values, geometry other than the image's) and ``label_map.check``
    (codes the map does not know).

    Returns
    -------
    (medcl.io.nifti.Volume, medcl.io.nifti.Volume or None)
        The image and the label map in the file's own codes (apply ``label_map`` to remap).

    Raises
    ------
    medcl.io.InputFileError
        Naming the file at fault and the fix.
    """
    from medcl.io.nifti import read_labels, read_volume

    vol = read_volume(image, channel=channel)
    if label is None:
        return vol, None
    lab = read_labels(label, like=vol)
    label_map.check(lab.data, lab.path)
    return vol, lab
