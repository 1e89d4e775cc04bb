"""Hyper-parameters of a SepCLR run, with the authors' defaults.

Louiset et al. 2024 (ICLR, arXiv:2402.11928), sec. 4, and the authors' training scripts
(github.com/neurospin-projects/2024_rlouiset_sep_clr, ``*/sep_clr_k-jem.py``,
``*/architectures.py``, ``*/data_augmentation.py``): Adam 3e-4, batch 512, 32 + 32 dimensions,
tau = 0.5, two ResNet-18 encoders with a 3x3 stride-1 stem and no max-pool for small images, a
projector ``code -> 128 (batch norm, ReLU) -> code``, loss weights 1 / 1000 / 1000 / 10 on
CIFAR-10 + MNIST, 250 epochs, SimCLR-style augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

METHODS = ("sepclr", "simclr", "cvae")
ENCODERS = ("resnet18", "small")
VIEWS = ("separate", "joint")
PROBE_METRICS = ("accuracy", "balanced_accuracy")


@dataclass
class SepCLRConfig:
    """What ``medcl sepclr fit`` trains; every field is a CLI flag, a data-card value or has the
    authors' value.

    ``method`` picks SepCLR or one of the baselines run in the same harness: ``simclr`` (one
    encoder trained with NT-Xent on the pooled background + target data, its code split in two
    parts read as common and salient) and ``cvae`` (the contrastive VAE of Abid & Zou 2019).

    Encoder (item 8 of issue 11): ``resnet18`` is the authors' (torchvision ResNet-18; for
    images of at most 64 px the CIFAR stem of SimCLR's appendix B.9: 3x3 stride 1, no max-pool);
    ``small`` is a one-block-per-stage MONAI ResNet of ``widths`` channels (stride-2 3x3 stem)
    for CPU runs. Both end in a linear layer to the code size, read by the probes, then the
    authors' projector. ``pretrained`` is the path of a torchvision ResNet-18 state dict
    (``resnet18``; never downloaded).

    Loss weights (``common_weight``, ``salient_weight``, ``regulariser_weight``, ``mi_weight``)
    multiply, in the authors' scripts, the common term (alignment + uniformity of the
    normalised common codes), the salient term (``salient_term_beta``: alignment of target
    salient codes + uniformity of ``s'``), the information-less regulariser
    (``salient_reg_beta``: background salient codes to 0) and the kernel joint-entropy
    (``jem_lambda``). The authors' values, in each data card (``--card``): CIFAR-10 + MNIST and
    CelebA 1 / 1000 / 1000 / 10; CheXpert 1 / 1 / 10 / 10; ODIR 1 / 1 / 100 / 10.

    Augmentations (item 9), as the authors' kornia pipelines: random resized crop of scale
    ``(crop_scale, crop_scale_max)`` to ``crop_size`` (default: the image size; the authors crop
    CIFAR to 24 px), horizontal flip ``hflip``, vertical flip ``vflip``, colour jitter
    ``jitter`` (brightness, contrast, saturation, hue) with probability ``jitter_p``, grayscale
    with probability ``grayscale_p``, rotation up to ``rotation`` degrees.

    ``views``: ``separate`` (the authors: one forward pass per view, so batch norm never sees
    both views in one batch) or ``joint`` (both views in one batch; the former behaviour, kept
    for ablations). ``probe_metric``: the metric of the authors' probe table.
    """

    method: str = "sepclr"
    encoder: str = "resnet18"
    pretrained: str | None = None
    common_dim: int = 32
    salient_dim: int = 32
    projector_hidden: int = 128
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
    views: str = "separate"
    crop_scale: float = 0.2
    crop_scale_max: float = 1.0
    crop_size: int | None = None
    hflip: float = 0.5
    vflip: float = 0.0
    rotation: float = 0.0
    jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.4, 0.1])
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    probe_metric: str = "accuracy"
    card: str | None = None
    image_size: int | None = None
    channels: int | None = None
    nifti_slice: int | None = None
    holdout: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.views not in VIEWS:
            raise ValueError(f"views must be one of {VIEWS}, got {self.views!r}")
        if self.probe_metric not in PROBE_METRICS:
            raise ValueError(f"probe_metric must be one of {PROBE_METRICS}, got "
                             f"{self.probe_metric!r}")
        if self.common_dim < 1 or self.salient_dim < 1 or self.projector_hidden < 1:
            raise ValueError("common_dim, salient_dim and projector_hidden must be positive")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2")
        if not 0.0 < self.crop_scale <= self.crop_scale_max <= 1.0:
            raise ValueError("crop scales must satisfy 0 < crop_scale <= crop_scale_max <= 1, "
                             f"got ({self.crop_scale}, {self.crop_scale_max})")
        for name in ("hflip", "vflip", "jitter_p", "grayscale_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")
        if len(self.jitter) != 4 or min(self.jitter) < 0 or self.jitter[3] > 0.5:
            raise ValueError("jitter is (brightness, contrast, saturation, hue), each >= 0 and "
                             f"hue <= 0.5, got {list(self.jitter)}")
        if self.rotation < 0 or (self.crop_size is not None and self.crop_size < 8):
            raise ValueError("rotation must be >= 0 degrees and crop_size >= 8 pixels")
        if self.pretrained is not None and self.encoder != "resnet18":
            raise ValueError("pretrained weights are torchvision ResNet-18 weights: use them "
                             "with encoder 'resnet18'")
