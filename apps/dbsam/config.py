"""Hyper-parameters of a DB-SAM run, with the paper's defaults (Qin et al., MICCAI 2024,
arXiv:2410.04172, Sec. 3: SAM ViT-B at 1024², MONAI DiceCE, AdamW lr 1e-4 / wd 0.01, one warm-up
epoch then polynomial decay, 20 epochs; training boxes from the labels with each side moved
outward by 0-19 px and evaluation boxes grown by 9 px, both counted on 256² slices as the
authors' released data loaders; deformable attention with 4 points, FFN ratio 4, drop path
0.3)."""

from __future__ import annotations

from dataclasses import dataclass

ARCH_CHOICES = ("tiny", "vit_b", "vit_l", "vit_h", "litemedsam")
LITEMEDSAM_SIZE = 256
MODALITIES = ("ct", "mr")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class DBSAMConfig:
    """What ``medcl dbsam train`` needs besides the data; CLI flags override these.

    Attributes
    ----------
    arch, image_size : SAM encoder size and input side ``S`` (longest image side is resized to it);
        ``image_size`` ``None`` means 1024, or 256 for ``litemedsam`` (LiteMedSAM's TinyViT, which
        takes 256 only).
    sam_checkpoint : official SAM weights (``sam_vit_b_01ec64.pth`` ...) or LiteMedSAM's
        ``lite_medsam.pth``; ``None``: random init.
    modality : ``"ct"`` (window ``window`` or ``preset``) or ``"mr"`` (0.5-99.5 percentiles).
    labels : label codes to learn (``None``: every non-zero code found).
    min_pixels : a (slice, label) pair is a training sample when the label covers this many pixels.
    jitter : training boxes move each side outward by 0..``jitter`` pixels of a 256² slice
        (scaled to the slice's longest side, :func:`medcl.dbsam.prompts.px_at_256`).
    eval_margin : evaluation boxes are the label's tight box grown by this many pixels of a
        256² slice (scaled likewise).
    nsd_tolerance_mm : tolerance of our normalised surface Dice (``nsd_2mm``, native grid); the
        authors' (``nsd_paper``) is fixed: 1 voxel on the 256² grid.
    num_points, ffn_ratio, drop_path : of the deformable interaction and fusion blocks;
        ``ffn_ratio`` ``None`` means 4 (the paper's), or 1 on ``litemedsam`` (see
        :class:`medcl.dbsam.litemedsam.DBSAMLite`).
    accelerator : training device, ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    arch: str = "vit_b"
    image_size: int | None = None
    sam_checkpoint: str | None = None
    modality: str = "ct"
    window: list[float] | None = None
    preset: str = "soft-tissue"
    channel: int | None = None
    labels: list[int] | None = None
    min_pixels: int = 10
    epochs: int = 20
    batch_size: int = 2
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_epochs: int = 1
    poly_power: float = 0.9
    jitter: int = 19
    eval_margin: int = 9
    nsd_tolerance_mm: float = 2.0
    num_points: int = 4
    ffn_ratio: float | None = None
    drop_path: float = 0.3
    seed: int = 0
    accelerator: str = "auto"

    def __post_init__(self) -> None:
        if self.arch not in ARCH_CHOICES:
            raise ValueError(f"arch must be one of {ARCH_CHOICES}, got {self.arch!r}")
        lite = self.arch == "litemedsam"
        if self.image_size is None:
            self.image_size = LITEMEDSAM_SIZE if lite else 1024
        if self.ffn_ratio is None:
            self.ffn_ratio = 1.0 if lite else 4.0
        if lite and self.image_size != LITEMEDSAM_SIZE:
            raise ValueError(f"litemedsam takes {LITEMEDSAM_SIZE}² inputs only, got image_size "
                             f"{self.image_size}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.image_size < 64 or self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 and >= 64, got "
                             f"{self.image_size}")
        if self.window is not None and (len(self.window) != 2 or self.window[1] <= 0):
            raise ValueError("window needs LEVEL,WIDTH with WIDTH > 0")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs >= 1, batch_size >= 1 and lr > 0 are needed")
        if self.accelerator not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.accelerator!r}")
        if self.jitter < 0 or self.eval_margin < 0 or self.min_pixels < 1:
            raise ValueError("jitter and eval_margin >= 0, min_pixels >= 1 are needed")
        if self.num_points < 1 or self.ffn_ratio <= 0 or not 0 <= self.drop_path < 1:
            raise ValueError("num_points >= 1, ffn_ratio > 0 and 0 <= drop_path < 1 are needed")

    @property
    def style(self) -> str:
        """Input pipeline of the architecture: ``"litemedsam"`` or ``"sam"`` (see
        :mod:`medcl.dbsam.preprocess`)."""
        return "litemedsam" if self.arch == "litemedsam" else "sam"
