"""Hyper-parameters of ``medcl core image`` runs, checked once at the edge."""

from __future__ import annotations

from dataclasses import dataclass

from medcl.io.errors import ConfigError

BACKBONES = ("small", "resnet18")
MAX_VIEWS = 8


@dataclass
class ImageConfig:
    """One pretraining run of an image method (``medcl core image pretrain``).

    Method-specific defaults (temperature, number of views) come from the method's recipe in
    :mod:`medcl.core.recipes` when left at ``None``; the resolved values are what
    ``config.yaml`` records.

    Parameters
    ----------
    method : str
        A name of :data:`medcl.core.recipes.RECIPES`.
    data : str
        ``digits``, ``textures`` or a folder of PNG/JPG images.
    labels : str or None
        CSV ``file,label`` for a folder (else subfolders are classes, when every image is in one).
    views : int or None
        Augmented views per image, 2..8 (``None``: the recipe's default).
    backbone : {"small", "resnet18"}
        A 3-block CNN (width ``width``) or a ResNet-18 with a CIFAR stem.
    epochs : int
        Training epochs (``compare`` trains under a wall-clock budget instead).
    batch_size : int
        Images per batch (each contributes ``views`` augmented views).
    lr, weight_decay : float
        AdamW settings.
    temperature : float or None
        Loss temperature (``None``: the method's paper default, see its recipe).
    proj_dim : int
        Output width of the projection head.
    width : int
        Width of the small CNN (its features have ``4 * width`` dimensions).
    image_size : int or None
        Square size for folders of images (``None``: their most common size).
    test_size : float
        Share of labelled images held out to score the probes (stratified, seeded).
    knn_k : int
        Neighbours of the kNN probe.
    seed : int
        Seed of the split, the initialisation and every augmentation.
    """

    method: str = "simclr"
    data: str = "digits"
    labels: str | None = None
    views: int | None = None
    backbone: str = "small"
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float | None = None
    proj_dim: int = 64
    width: int = 16
    image_size: int | None = None
    test_size: float = 0.3
    knn_k: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.views is not None and not 2 <= self.views <= MAX_VIEWS:
            raise ConfigError(f"--views {self.views}: a contrastive method needs 2 to "
                              f"{MAX_VIEWS} views of each image",
                              fix=f"give --views between 2 and {MAX_VIEWS}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"--backbone {self.backbone!r} is unknown",
                              fix=f"choose one of {', '.join(BACKBONES)}")
        checks = [("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 2),
                  ("--proj-dim", self.proj_dim, 1), ("--width", self.width, 1),
                  ("--knn-k", self.knn_k, 1)]
        for flag, value, low in checks:
            if value < low:
                raise ConfigError(f"{flag} {value} is too small", fix=f"give {flag} >= {low}")
        if self.image_size is not None and self.image_size < 4:
            raise ConfigError(f"--image-size {self.image_size} is too small",
                              fix="give --image-size >= 4")
        if not 0.0 < self.test_size < 1.0:
            raise ConfigError(f"--test-size {self.test_size} is not in (0, 1)",
                              fix="give e.g. --test-size 0.3")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError("--lr must be > 0 and --weight-decay >= 0",
                              fix="give e.g. --lr 2e-3 --weight-decay 1e-4")
        if self.temperature is not None and self.temperature <= 0:
            raise ConfigError(f"--temperature {self.temperature} must be > 0",
                              fix="give e.g. --temperature 0.5")
        if not 0 <= self.seed <= 2**32 - 1:
            raise ConfigError(f"--seed {self.seed} is outside [0, 2**32 - 1]",
                              fix="give a non-negative 32-bit seed")
