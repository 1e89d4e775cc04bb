"""Hyper-parameters of a PI-RADS zone run (Das et al. 2023; preprocessing as Meyer et al. 2019:
0.5 x 0.5 x 3.0 mm, intensities clipped to the 1st-99th percentile, 168 x 168 x 32 crop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRESETS: dict[str, dict[str, list[int]]] = {
    "paper": {"filters": [16, 32, 64, 128, 256], "crop": [168, 168, 32]},
    "cpu": {"filters": [8, 16, 32, 32, 64], "crop": [96, 96, 24]},
}
"""Network and crop sizes by name: ``paper`` (Meyer et al. 2019 / UATS: filters 16-256, crop
168 x 168 x 32; about 50 s per training step of batch 2 on 2 CPU cores) and ``cpu`` (the demo's
filters 8-64, crop 96 x 96 x 24 = 48 x 48 x 72 mm, which holds a typical gland; a few seconds
per step). ``medcl pirads train --preset``."""


@dataclass
class PiradsConfig:
    """What ``medcl pirads train`` needs besides the data; CLI flags override these.

    ``consistency_rampup`` is the fraction of the co-training stage over which the consistency
    weight ramps up to ``consistency_weight``; ``other_weight`` is each path's class weight for
    the zones of the other path's group (its own group and background weigh 1);
    ``balance_ce`` weights the cross-entropy by inverse square-root class frequency.

    Training crops are ``crop`` voxels centred on the labelled gland, moved by a random offset
    of up to ``shift`` voxels per axis (default 8, 8, 2 = 4, 4, 6 mm, the UATS translation
    range); ``augment`` adds the 3-D augmentation of
    :func:`medcl.pirads.transforms.augment_transforms`. ``val_fraction`` of the labelled cases
    (at least one when it is > 0 and there are two cases or more) are held out to select the
    best epoch of each stage by their mean per-zone Dice; ``patience`` > 0 stops a stage after
    that many epochs without improvement. The learning rate follows a cosine schedule from
    ``lr`` to ``lr / 100`` over each stage.
    """

    spacing: list[float] = field(default_factory=lambda: [0.5, 0.5, 3.0])
    crop: list[int] = field(default_factory=lambda: [168, 168, 32])
    filters: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])
    groups: list[list[int]] = field(default_factory=lambda: [[1, 3], [2, 4]])
    epochs: int = 100
    cotrain_epochs: int = 20
    consistency_weight: float = 1.0
    consistency_rampup: float = 0.5
    other_weight: float = 0.5
    balance_ce: bool = True
    batch_size: int = 2
    lr: float = 1e-3
    seed: int = 0
    channel: int | None = None
    shift: list[int] = field(default_factory=lambda: [8, 8, 2])
    augment: bool = True
    val_fraction: float = 0.2
    patience: int = 0

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PiradsConfig:
        """The config of a named size in :data:`PRESETS`, with ``overrides`` (``None`` values
        are ignored, so unset CLI flags keep the preset's)."""
        if name not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {name!r}")
        kw: dict[str, Any] = {k: list(v) for k, v in PRESETS[name].items()}
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)

    def __post_init__(self) -> None:
        if len(self.spacing) != 3 or len(self.crop) != 3 or min(self.crop) < 8:
            raise ValueError("spacing and crop need three values; crop sizes >= 8")
        if self.epochs < 1 or self.cotrain_epochs < 0 or self.batch_size < 1:
            raise ValueError("epochs >= 1, cotrain_epochs >= 0 and batch_size >= 1 are needed")
        if not 0.0 <= self.consistency_rampup <= 1.0 or self.consistency_weight < 0:
            raise ValueError("consistency_rampup must be in [0, 1] and consistency_weight >= 0")
        from .model import ANISOTROPIC_STRIDES, required_divisor

        if len(self.filters) != len(ANISOTROPIC_STRIDES) or min(self.filters) < 1:
            raise ValueError(f"--filters needs {len(ANISOTROPIC_STRIDES)} positive integers, one "
                             f"per network level (e.g. 16,32,64,128,256), got {self.filters}")
        div = required_divisor()
        if any(c % d for c, d in zip(self.crop, div, strict=True)):
            raise ValueError(f"--crop {','.join(map(str, self.crop))}: each size must be a "
                             f"multiple of the network's total stride {','.join(map(str, div))}"
                             " per axis (e.g. 168,168,32 or 64,64,16)")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if len(self.shift) != 3 or min(self.shift) < 0:
            raise ValueError(f"shift needs three sizes >= 0 (voxels), got {self.shift}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.patience < 0:
            raise ValueError(f"--patience must be >= 0 (0: no early stopping), got "
                             f"{self.patience}")
        if not 0.0 < self.other_weight <= 1.0:
            raise ValueError("other_weight (class weight of the other path's zones) must be in "
                             "(0, 1]")
