"""Hyper-parameters of an MVCNet run, with the paper's defaults (Wang et al. 2025, sec. 4.3 and the
authors' scripts: Adam 1e-3, batch 64, 100 epochs, tau 0.2, lambda1 = lambda2 = 0.1, views flip /
frequency shift / channel reflection, last-epoch accuracy)."""

from __future__ import annotations

from dataclasses import dataclass, field

INFER_MODES = ("cnn", "fused")
ALIGNMENTS = ("ea", "none")

PROTOCOL_TITLES: dict[str, str] = {
    "co": "CO (within subject, chronological: first 80% of each class to train)",
    "cv": "CV (within subject, 5-fold, no shuffling)",
    "loso": "LOSO (leave one subject out)",
    "t2e": "T->E (train on the first session, test on the second)",
}
"""The evaluation protocols and the title every results table of one carries: the one home of
their names (:mod:`.protocols` makes the splits, the CLI and the harness read them here; this
module imports nothing heavy, so ``--help`` stays fast)."""

PROTOCOLS: tuple[str, ...] = tuple(PROTOCOL_TITLES)
"""The protocol names, in the order of :data:`PROTOCOL_TITLES`."""


@dataclass
class MVCNetConfig:
    """Everything ``medcl mvcnet train`` needs besides the data; CLI flags override these."""

    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    temperature: float = 0.2
    lambda_cvc: float = 0.1
    lambda_cmc: float = 0.1
    views: list[str] = field(default_factory=lambda: ["flip", "freq_shift", "reflect"])
    infer: str = "cnn"
    n_filters: int = 64
    kernel_size: int = 63
    pool: int = 125
    dropout: float = 0.5
    trans_heads: int = 2
    trans_layers: int = 1
    trans_hidden: int = 2048
    l_freq: float | None = 8.0
    h_freq: float | None = 32.0
    notch: float | None = None
    resample: float | None = None
    tmin: float | None = None
    tmax: float | None = None
    alignment: str = "ea"
    ems: bool = False
    protocol: str = "co"
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])

    def __post_init__(self) -> None:
        if self.infer not in INFER_MODES:
            raise ValueError(f"infer must be one of {INFER_MODES}, got {self.infer!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if self.epochs < 1 or self.batch_size < 2 or not self.seeds:
            raise ValueError("epochs >= 1, batch_size >= 2 and at least one seed are needed")
