"""Images for ``medcl core image``: packaged sets, folders of PNG/JPG, augmented views.

``digits`` is scikit-learn's copy of the UCI handwritten digits (1797 8x8 images, card
``sklearn_digits``); ``textures`` is 32x32 grey crops of ten of scikit-image's shipped images,
the image's name being the class (both offline). A folder gives its PNG/JPG images (recursively),
labelled by subfolder when every image lies in one, or by a ``file,label`` CSV. Every check
happens here, before anything is written.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from medcl.io.errors import ConfigError, InputFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TEXTURES = ("brick", "grass", "gravel", "camera", "coins", "moon", "page", "text", "astronaut",
            "coffee")
TEXTURE_CROPS = 120
TEXTURE_SIZE = 32


@dataclass
class ImageSet:
    """Images ``(N, C, H, W)`` in [0, 1], integer labels ``(N,)`` or ``None``, class names,
    per-image names, and notes for the report (resizing, channel conversion)."""

    images: Tensor
    labels: np.ndarray | None
    classes: list[str] | None
    names: list[str]
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])


def load_digits_set() -> ImageSet:
    """scikit-learn's digits as ``(1797, 1, 8, 8)`` in [0, 1] with labels 0..9."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    return ImageSet(x, np.asarray(d.target, dtype=np.int64), [str(i) for i in range(10)],
                    [f"digit_{i:04d}" for i in range(len(x))], "digits (scikit-learn)")


def load_textures_set(crops: int = TEXTURE_CROPS, size: int = TEXTURE_SIZE) -> ImageSet:
    """``crops`` random ``size`` x ``size`` grey crops of each of :data:`TEXTURES` (fixed seed 0,
    so the set is the same in every run); the class is the source image."""
    import skimage.data
    from skimage.color import rgb2gray

    rng = np.random.default_rng(0)
    xs, ys, names = [], [], []
    for c, name in enumerate(TEXTURES):
        im = np.asarray(getattr(skimage.data, name)())
        im = rgb2gray(im) if im.ndim == 3 else im.astype(np.float64) / 255.0
        h, w = im.shape
        for k in range(crops):
            i, j = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            xs.append(im[i:i + size, j:j + size])
            ys.append(c)
            names.append(f"{name}_{k:03d}")
    x = torch.tensor(np.stack(xs), dtype=torch.float32).unsqueeze(1)
    return ImageSet(x, np.asarray(ys, dtype=np.int64), list(TEXTURES), names,
                    f"textures ({len(TEXTURES)} scikit-image images x {crops} crops)")


def list_images(folder: Path) -> list[Path]:
    """PNG/JPG files under ``folder`` (recursively, hidden files skipped), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower()
                  in IMAGE_SUFFIXES and not any(part.startswith(".")
                                                for part in p.relative_to(folder).parts))


def _read_labels(csv_path: Path, folder: Path, files: list[Path]) -> list[str]:
    fix = "give a CSV with a header 'file,label' and one row per image (file relative to DIR)"
    if not csv_path.is_file():
        raise InputFileError("labels file not found", path=csv_path, fix="check --labels")
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"cannot read the labels CSV ({exc})", path=csv_path,
                             fix=fix) from exc
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise InputFileError("the labels CSV needs the columns file and label", path=csv_path,
                             fix=fix)
    table = {r["file"].strip(): (r["label"] or "").strip() for r in rows}
    labels, missing = [], []
    for f in files:
        rel = f.relative_to(folder).as_posix()
        label = table.get(rel, table.get(f.name))
        if not label:
            missing.append(rel)
        labels.append(label or "")
    if missing:
        raise InputFileError(f"{len(missing)} image(s) have no label, e.g. {missing[:3]}",
                             path=csv_path, fix="add a row file,label for every image in DIR")
    return labels


def read_folder(folder: str | Path, *, labels_csv: str | Path | None = None,
                size: tuple[int, int] | None = None, channels: int | None = None,
                want_labels: bool = True) -> ImageSet:
    """Read every PNG/JPG under ``folder`` into one tensor.

    Parameters
    ----------
    folder : path
        The images (recursively).
    labels_csv : path, optional
        CSV ``file,label``; else subfolders are classes when every image lies in one.
    size : (int, int), optional
        Resize every image to this size; default: the most common size (others are resized,
        and a note says how many).
    channels : {1, 3}, optional
        Convert to grey (luminance) or RGB (grey repeated); default: 3 if any image is RGB.
    want_labels : bool
        Look for labels at all (``embed`` does not).

    Raises
    ------
    InputFileError
        The folder is missing or holds no image, an image is unreadable, a label is missing.
    """
    from medcl.io.images import read_image

    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError("is not a folder", path=folder,
                             fix="give --data digits, textures or a folder of PNG/JPG images")
    files = list_images(folder)
    if not files:
        raise InputFileError("holds no PNG/JPG image", path=folder,
                             fix="put .png/.jpg images in the folder (subfolders as classes)")
    names = [f.relative_to(folder).as_posix() for f in files]
    label_names: list[str] | None = None
    if want_labels and labels_csv is not None:
        label_names = _read_labels(Path(labels_csv), folder, files)
    elif want_labels and all(len(f.relative_to(folder).parts) > 1 for f in files):
        label_names = [f.relative_to(folder).parts[0] for f in files]
        if len(set(label_names)) < 2:
            label_names = None
    pixels = [read_image(f)[0] for f in files]
    notes: list[str] = []
    if size is None:
        size = Counter(p.shape[:2] for p in pixels).most_common(1)[0][0]
    size = (int(size[0]), int(size[1]))
    n_resized = sum(p.shape[:2] != size for p in pixels)
    if n_resized:
        notes.append(f"{n_resized} of {len(pixels)} images were resized to {size[0]}x{size[1]} "
                     "(bilinear, antialiased)")
    if channels is None:
        channels = 3 if any(p.shape[2] == 3 for p in pixels) else 1
    n_converted = sum(p.shape[2] != channels for p in pixels)
    if n_converted:
        notes.append(f"{n_converted} images were converted to "
                     f"{'RGB' if channels == 3 else 'grey'}")
    out = torch.empty(len(pixels), channels, *size)
    lum = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    for i, p in enumerate(pixels):
        t = torch.from_numpy(np.ascontiguousarray(p)).permute(2, 0, 1)
        if t.shape[0] != channels:
            t = t.expand(3, -1, -1) if channels == 3 else (t * lum).sum(0, keepdim=True)
        if tuple(t.shape[1:]) != size:
            t = torch.nn.functional.interpolate(t[None], size=size, mode="bilinear",
                                                antialias=True, align_corners=False)[0]
        out[i] = t
    labels = classes = None
    if label_names is not None:
        classes = sorted(set(label_names))
        code = {c: k for k, c in enumerate(classes)}
        labels = np.asarray([code[c] for c in label_names], dtype=np.int64)
    return ImageSet(out.clamp_(0, 1), labels, classes, names, f"folder {folder}", notes)


def load_data(spec: str, *, labels_csv: str | None = None,
              image_size: int | None = None) -> ImageSet:
    """``digits``, ``textures`` or a folder (see :func:`read_folder`)."""
    if labels_csv is not None and spec in ("digits", "textures"):
        raise ConfigError(f"--labels applies to a folder; --data {spec} has its own labels",
                          fix="drop --labels, or give --data a folder of images")
    if spec == "digits":
        data = load_digits_set()
    elif spec == "textures":
        data = load_textures_set()
    else:
        size = None if image_size is None else (image_size, image_size)
        return read_folder(spec, labels_csv=labels_csv, size=size)
    if image_size is not None and (image_size, image_size) != data.size:
        data.images = torch.nn.functional.interpolate(
            data.images, size=(image_size, image_size), mode="bilinear", antialias=True)
        data.notes.append(f"images resized to {image_size}x{image_size}")
    return data


def split(data: ImageSet, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: stratified by label, seeded; all images train when unlabelled."""
    idx = np.arange(len(data.images))
    if data.labels is None:
        return idx, idx[:0]
    from sklearn.model_selection import train_test_split

    try:
        tr, te = train_test_split(idx, test_size=test_size, random_state=seed,
                                  stratify=data.labels)
    except ValueError:  # a class too small to stratify
        tr, te = train_test_split(idx, test_size=test_size, random_state=seed)
    return np.sort(tr), np.sort(te)


# -- augmentations ----------------------------------------------------------------------------
def small_crop_size(size: tuple[int, int]) -> tuple[int, int]:
    """Side of SwAV's low-resolution crops: about 0.57 of the image (96/168), at least 4."""
    return max(4, round(size[0] * 0.57)), max(4, round(size[1] * 0.57))


def _uniform(n: int, low: float, high: float, device: torch.device) -> Tensor:
    return torch.empty(n, device=device).uniform_(low, high)


class BatchAugment(torch.nn.Module):
    """Random views of a whole batch at once, on the batch's device (no per-image Python loop).

    Every method of a run shares it (``compare`` keeps it fixed across methods). Each view of
    each image draws its own parameters from PyTorch's global generator, which the engine reseeds
    every epoch (so runs are reproducible and resumable). Geometry is one
    :func:`~torch.nn.functional.affine_grid` / :func:`~torch.nn.functional.grid_sample` per view.

    - Images of at most 16 pixels (digits): the core demo's jitter, batched: rotation +-15 deg,
      translation +-12.5%, zoom 0.8-1.1, shear +-10 deg; erasing of a 5-15% rectangle with
      probability 0.5; Gaussian noise sigma 0.1.
    - Larger images: SimCLR's recipe (Chen et al. 2020, appendix A) for small images: random
      resized crop (area 0.2-1, aspect 3/4-4/3), horizontal flip, with probability 0.8 brightness,
      contrast (and, for RGB, saturation) jitter of 0.4, random grey (RGB, p 0.2), noise 0.03.
      Hue jitter is left out (it needs an HSV round trip per image).

    Parameters
    ----------
    size : (int, int)
        Image height and width.
    channels : int
        1 or 3.
    n_views : int
        Views per image.
    n_small : int
        The last ``n_small`` views are SwAV's multi-crop low-resolution crops (Caron et al. 2020,
        sec. 3.2): a crop of 30-70% of the area resized to :func:`small_crop_size`, then the same
        photometric jitter.
    """

    def __init__(self, size: tuple[int, int], channels: int, n_views: int,
                 n_small: int = 0) -> None:
        super().__init__()
        if not 0 <= n_small < n_views:
            raise ValueError("need at least one full-size view")
        self.size, self.channels = (int(size[0]), int(size[1])), int(channels)
        self.n_views, self.n_small = int(n_views), int(n_small)
        self.tiny = max(self.size) <= 16

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x``: (N, C, H, W) in [0, 1] -> ``n_views`` tensors (N, C, h, w)."""
        out = []
        for v in range(self.n_views):
            small = v >= self.n_views - self.n_small
            size = small_crop_size(self.size) if small else self.size
            out.append(self._view(x, size, small))
        return out

    def _view(self, x: Tensor, size: tuple[int, int], small: bool) -> Tensor:
        import math

        import torch.nn.functional as F

        n, dev = x.shape[0], x.device
        theta = torch.zeros(n, 2, 3, device=dev)
        if self.tiny and not small:
            ang = _uniform(n, -15, 15, dev) * math.pi / 180
            shear = _uniform(n, -10, 10, dev) * math.pi / 180
            zoom = 1.0 / _uniform(n, 0.8, 1.1, dev)
            cos, sin, tan = torch.cos(ang), torch.sin(ang), torch.tan(shear)
            theta[:, 0, 0], theta[:, 0, 1] = cos * zoom, (cos * tan - sin) * zoom
            theta[:, 1, 0], theta[:, 1, 1] = sin * zoom, (sin * tan + cos) * zoom
            theta[:, :, 2] = torch.empty(n, 2, device=dev).uniform_(-0.25, 0.25)
        else:
            low, high = (0.3, 0.7) if small else ((0.5, 1.0) if self.tiny else (0.2, 1.0))
            area = _uniform(n, low, high, dev)
            ratio = torch.exp(_uniform(n, math.log(3 / 4), math.log(4 / 3), dev))
            w = torch.sqrt(area * ratio).clamp(max=1.0)
            h = torch.sqrt(area / ratio).clamp(max=1.0)
            flip = torch.where(torch.rand(n, device=dev) < 0.5, -1.0, 1.0)
            theta[:, 0, 0], theta[:, 1, 1] = w * flip, h
            theta[:, 0, 2] = (torch.rand(n, device=dev) * 2 - 1) * (1 - w)
            theta[:, 1, 2] = (torch.rand(n, device=dev) * 2 - 1) * (1 - h)
        grid = F.affine_grid(theta, [n, x.shape[1], *size], align_corners=False)
        y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.tiny:
            y = self._erase(y)
            return y + 0.1 * torch.randn_like(y)
        return (self._colour(y) + 0.03 * torch.randn_like(y)).clamp(0, 1)

    @staticmethod
    def _erase(y: Tensor) -> Tensor:
        n, _, h, w = y.shape
        dev = y.device
        area = torch.empty(n, device=dev).uniform_(0.05, 0.15)
        ratio = torch.exp(torch.empty(n, device=dev).uniform_(-1.2, 1.2))
        eh = (torch.sqrt(area * ratio) * h).round().clamp(1, h)
        ew = (torch.sqrt(area / ratio) * w).round().clamp(1, w)
        top = (torch.rand(n, device=dev) * (h - eh + 1)).floor()
        left = (torch.rand(n, device=dev) * (w - ew + 1)).floor()
        rows = torch.arange(h, device=dev).view(1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, w)
        box = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
               & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1)))
        box &= (torch.rand(n, device=dev) < 0.5).view(n, 1, 1)
        return y.masked_fill(box.unsqueeze(1), 0.0)

    def _colour(self, y: Tensor) -> Tensor:
        n, dev = y.shape[0], y.device
        on = (torch.rand(n, 1, 1, 1, device=dev) < 0.8).float()

        def factor() -> Tensor:
            return 1 + on * (torch.rand(n, 1, 1, 1, device=dev) * 0.8 - 0.4)

        def grey(t: Tensor) -> Tensor:
            if t.shape[1] == 1:
                return t
            weights = torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1)
            return (t * weights).sum(1, keepdim=True)

        y = y * factor()
        mean = grey(y).mean(dim=(1, 2, 3), keepdim=True)
        y = (y - mean) * factor() + mean
        if self.channels == 3:
            g = grey(y)
            y = (y - g) * factor() + g
            to_grey = (torch.rand(n, 1, 1, 1, device=dev) < 0.2).float()
            y = to_grey * grey(y).expand_as(y) + (1 - to_grey) * y
        return y
