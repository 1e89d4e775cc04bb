"""Hyper-parameters of an MVCNet run, with the paper's defaults (Wang et al. 2025, sec. 4.3 and the
authors' scripts: Adam 1e-3, batch 64 (32 under CV, as ``MVCNet_CV.py``), 100 epochs, tau 0.2,
lambda1 = lambda2 = 0.1, views flip / frequency shift / channel reflection, projector hidden
width 4x the feature size, last-epoch accuracy)."""

from __future__ import annotations

from dataclasses import dataclass, field

INFER_MODES = ("cnn", "fused")
ALIGNMENTS = ("ea", "none")

TEST_ALIGNMENTS: dict[str, str] = {
    "online": "incremental Euclidean alignment of the test trials in recording order",
    "authors": "Euclidean alignment of the whole test set, then incremental alignment on top "
    "(the authors' CO/CV code)",
}
"""How test trials are aligned (``--test-alignment``) and the words every results table and
report uses for it (see :func:`medcl.mvcnet.harness.preprocess`)."""

PRECISIONS = ("32-true", "bf16-mixed")
"""Training precisions of ``--precision`` (Lightning Fabric's names): float32, or autocast to
bfloat16 (on the CPU too, where CPUs with bfloat16 instructions train MVCNet about 1.7x as
fast: ``benchmarks/bench_mvcnet.py``)."""

AUTHORS_BATCH_SIZE: dict[str, int] = {"co": 64, "cv": 32, "loso": 64, "t2e": 64}
"""Batch size per protocol when none is given: the authors' ``MVCNet_CO.py`` and
``MVCNet_LOSO.py`` train with 64, ``MVCNet_CV.py`` with 32; T->E (not theirs) takes 64."""

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
    """Everything ``medcl mvcnet train`` needs besides the data; CLI flags override these.

    ``batch_size`` ``None`` becomes the authors' batch size of the protocol
    (:data:`AUTHORS_BATCH_SIZE`: 64, or 32 under CV) when the config is built, so a resolved
    config always holds an integer. ``trans_hidden`` ``None`` is the authors' projector hidden
    width, 4x the feature size (``projector_dim1 = feature_deep_dim * 4`` in their scripts: 2048
    for 22 x 1000-sample trials, 5120 at 512 Hz), worked out by the model from the data.
    ``pool`` ``None`` (the default) is the authors' pooling for the sampling rate (125 at 250 Hz,
    128 at 512 Hz; :func:`medcl.mvcnet.model.authors_pool`); an integer fixes it.
    ``test_alignment`` is one of :data:`TEST_ALIGNMENTS`. ``precision`` is MVCNet's training
    precision (:data:`PRECISIONS`; ``None``: the engine's default, ``bf16-mixed`` on a CUDA
    device with bfloat16, ``32-true`` on the CPU); the baselines train in float32.
    """

    epochs: int = 100
    batch_size: int | None = None
    lr: float = 1e-3
    temperature: float = 0.2
    lambda_cvc: float = 0.1
    lambda_cmc: float = 0.1
    views: list[str] = field(default_factory=lambda: ["flip", "freq_shift", "reflect"])
    infer: str = "cnn"
    n_filters: int = 64
    kernel_size: int = 63
    pool: int | None = None
    dropout: float = 0.5
    trans_heads: int = 2
    trans_layers: int = 1
    trans_hidden: int | None = None
    l_freq: float | None = 8.0
    h_freq: float | None = 32.0
    notch: float | None = None
    resample: float | None = None
    tmin: float | None = None
    tmax: float | None = None
    alignment: str = "ea"
    test_alignment: str = "online"
    ems: bool = False
    protocol: str = "co"
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    precision: str | None = None

    def __post_init__(self) -> None:
        if self.infer not in INFER_MODES:
            raise ValueError(f"infer must be one of {INFER_MODES}, got {self.infer!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if self.test_alignment not in TEST_ALIGNMENTS:
            raise ValueError(f"test_alignment must be one of {tuple(TEST_ALIGNMENTS)}, got "
                             f"{self.test_alignment!r}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.batch_size is None:
            self.batch_size = AUTHORS_BATCH_SIZE[self.protocol]
        if self.trans_hidden is not None and self.trans_hidden < 1:
            raise ValueError(f"trans_hidden must be a positive width or None (4x the feature "
                             f"size), got {self.trans_hidden}")
        if self.epochs < 1 or self.batch_size < 2 or not self.seeds:
            raise ValueError("epochs >= 1, batch_size >= 2 and at least one seed are needed")
