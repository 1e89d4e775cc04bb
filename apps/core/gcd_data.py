"""Data of ``medcl core gcd``: long-tailed splits, known / novel classes, labelled subset.

``digits-lt`` is scikit-learn's digits (card ``sklearn_digits``) subsampled to a long tail:
class ``c`` (in the order 0..9) keeps ``round(n_max * r^(-c / (K - 1)))`` images, ``r`` the
imbalance ratio (the CIFAR-LT recipe of Cao et al. 2019, used by BaCon); ``cifar10-lt:DIR`` does
the same to a folder of CIFAR-10 training images in one subfolder per class (card
``cifar10_lt``); a plain folder is used as it is (already long-tailed or not). Every check,
``--known`` included, happens here before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from medcl.io.errors import ConfigError

from .data import ImageSet, load_digits_set, read_folder

__all__ = ["GCDData", "long_tail_counts", "prepare"]


@dataclass
class GCDData:
    """Images and class ids renumbered known-first (known ``0..K_old-1``, novel after), the
    labelled mask, and the class names in that order."""

    images: torch.Tensor
    labels: np.ndarray
    labelled: np.ndarray
    classes: list[str]
    n_known: int
    source: str
    notes: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def old_mask(self) -> np.ndarray:
        return self.labels < self.n_known

    def train_labels(self) -> np.ndarray:
        """Class of labelled images, ``-1`` for the others (what training may see)."""
        return np.where(self.labelled, self.labels, -1)


def long_tail_counts(n_max: int, n_classes: int, imbalance: float) -> list[int]:
    """``round(n_max * r^(-c / (K - 1)))`` for ``c = 0..K-1`` (at least 1)."""
    if n_classes == 1:
        return [n_max]
    return [max(1, int(round(n_max * imbalance ** (-c / (n_classes - 1)))))
            for c in range(n_classes)]


def _subsample_long_tail(data: ImageSet, imbalance: float, seed: int) -> ImageSet:
    assert data.labels is not None and data.classes is not None
    rng = np.random.default_rng(seed)
    per_class = np.bincount(data.labels, minlength=len(data.classes))
    counts = long_tail_counts(int(per_class.min()), len(data.classes), imbalance)
    keep = np.concatenate([np.sort(rng.choice(np.flatnonzero(data.labels == c), n,
                                              replace=False)) for c, n in enumerate(counts)])
    data.images, data.labels = data.images[keep], data.labels[keep]
    data.names = [data.names[i] for i in keep]
    data.notes.append(f"long-tailed at imbalance {imbalance:g}: {counts} images per class "
                      f"(classes in the order {', '.join(data.classes)})")
    return data


def load_images(spec: str, imbalance: float, seed: int) -> ImageSet:
    """``digits-lt``, ``cifar10-lt:DIR`` or a folder (subfolders as classes)."""
    if imbalance < 1:
        raise ConfigError(f"--imbalance {imbalance:g} must be >= 1",
                          fix="give e.g. --imbalance 100 (head / tail class size)")
    if spec == "digits-lt":
        data = load_digits_set()
        data.source = "digits-lt (scikit-learn digits)"
        return _subsample_long_tail(data, imbalance, seed)
    lt = spec.startswith("cifar10-lt:")
    folder = spec.split(":", 1)[1] if lt else spec
    data = read_folder(folder)
    if data.labels is None or data.classes is None or len(data.classes) < 2:
        raise ConfigError(f"{folder} has no class labels; category discovery is scored "
                          "against them", fix="put the images in one subfolder per class")
    return _subsample_long_tail(data, imbalance, seed) if lt else data


def parse_known(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names or len(set(names)) < len(names):
        raise ConfigError(f"--known {text!r} must name distinct classes",
                          fix="give e.g. --known 0,1,2,3,4")
    return names


def prepare(spec: str, known: str, imbalance: float, label_fraction: float,
            seed: int) -> GCDData:
    """Load, check ``--known`` against the data's classes, renumber, draw the labelled subset
    (``label_fraction`` of every known class, seeded; at least one image per known class)."""
    if not 0.0 < label_fraction < 1.0:
        raise ConfigError(f"--label-fraction {label_fraction:g} is not in (0, 1)",
                          fix="give e.g. --label-fraction 0.5")
    data = load_images(spec, imbalance, seed)
    assert data.labels is not None and data.classes is not None
    names = parse_known(known)
    missing = [n for n in names if n not in data.classes]
    if missing:
        raise ConfigError(f"--known names class(es) {', '.join(missing)} absent from "
                          f"{data.source} (classes: {', '.join(data.classes)})",
                          fix="give --known as a comma-separated subset of those classes")
    if len(names) == len(data.classes):
        raise ConfigError(f"--known names every class of {data.source}: nothing to discover",
                          fix="leave at least one class out of --known")
    order = names + [c for c in data.classes if c not in names]
    remap = np.array([order.index(c) for c in data.classes])
    labels = remap[data.labels]
    rng = np.random.default_rng(seed)
    labelled = np.zeros(len(labels), dtype=bool)
    for k in range(len(names)):
        idx = np.flatnonzero(labels == k)
        n = min(len(idx), max(1, int(round(label_fraction * len(idx)))))
        labelled[rng.choice(idx, n, replace=False)] = True
    return GCDData(data.images, labels, labelled, order, len(names), data.source,
                   list(data.notes))
