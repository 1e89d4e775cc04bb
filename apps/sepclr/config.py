"""Hyper-parameters of a SepCLR run, with the paper's defaults (Louiset et al. 2024, sec. 4 and
the authors' training scripts: Adam 3e-4, batch 512, 32 + 32 dimensions, tau = 0.5, loss weights
1 / 1000 / 1000 / 10, 250 epochs)."""

from __future__ import annotations

from dataclasses import dataclass, field

METHODS = ("sepclr", "simclr", "cvae")


@dataclass
class SepCLRConfig:
    """What ``medcl sepclr fit`` trains; every field is a CLI flag or has the paper's value.

    ``method`` picks SepCLR or one of the baselines run in the same harness: ``simclr`` (one
    encoder trained with NT-Xent on the pooled background + target data, its representation split
    in two halves) and ``cvae`` (the contrastive VAE of Abid & Zou 2019).
    """

    method: str = "sepclr"
    common_dim: int = 32
    salient_dim: int = 32
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    tau: float = 0.5
    common_weight: float = 1.0
    salient_weight: float = 1000.0
    regulariser_weight: float = 1000.0
    mi_weight: float = 10.0
    simclr_temperature: float = 0.5
    cvae_beta: float = 1.0
    lr: float = 3e-4
    batch_size: int = 512
    epochs: int = 250
    crop_scale: float = 0.6
    image_size: int | None = None
    channels: int | None = None
    nifti_slice: int | None = None
    holdout: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.common_dim < 1 or self.salient_dim < 1:
            raise ValueError("common_dim and salient_dim must be positive")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2")
