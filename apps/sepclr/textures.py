"""Digits on textures: an offline benchmark for contrastive analysis.

Contrastive analysis (CA) separates the factors of variation common to a background set and a
target set from the salient factors present only in the target [1]_. The SepCLR paper evaluates
this on synthetic datasets such as MNIST digits superposed on CIFAR-10 images (background:
CIFAR-10 alone; target: CIFAR-10 plus a digit). Those need downloads; this module builds a small
dataset of the same design from data that ship with scikit-image and scikit-learn:

* **background**: grayscale patches of natural textures (:data:`TEXTURES`);
* **target**: patches of the same textures with a handwritten digit of
  :func:`sklearn.datasets.load_digits` overlaid.

The texture class is the common factor (present in both sets), the digit the salient factor
(target only). Each texture image is standardised to the same mean and standard deviation so
that brightness alone does not identify the texture, and downsampled so that a patch of side
``S`` covers about ``3 S`` source pixels (several bricks or pebbles, not a single mortar line);
patches are random crops, randomly flipped.

Digit overlay: the 8x8 digit (0..16 scaled to [0, 1]) is upscaled bilinearly to a random
side of ``digit_scale * size`` pixels, giving a stroke mask ``m`` in [0, 1], and placed at a
random position fully inside the patch. The patch ``t`` becomes
``t * (1 - a * m) + a * m``, i.e. the strokes are blended towards white with opacity
``a = digit_alpha``: the digit is clearly visible and the texture still shows through it.

References
----------
.. [1] R. Louiset, E. Duchesnay, A. Grigis and P. Gori, "Separating common from salient patterns
   with Contrastive Representation Learning", ICLR 2024, arXiv:2402.11928.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from medcl.io import ConfigError, InputFileError, atomic_path, write_csv

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "TEXTURES",
    "DigitsOnTextures",
    "make_digits_on_textures",
    "write_digits_on_textures",
]

TEXTURES: tuple[str, ...] = ("brick", "grass", "gravel", "immunohistochemistry")
"""Texture sources: functions of :mod:`skimage.data` whose images ship with scikit-image (no
download). ``immunohistochemistry`` is an RGB tissue section, converted to grayscale."""

ATTRIBUTE_COLUMNS: tuple[str, ...] = ("file", "group", "texture", "texture_name", "digit")
"""Columns of :attr:`DigitsOnTextures.attributes` and of the written ``attributes.csv``."""

_MEAN = 0.45  # common mean of every standardised texture
_STD = 0.15  # common standard deviation
_ZOOM = 3.0  # a patch covers a region of _ZOOM * size source pixels (see _texture_zoom)
_SOURCE_SIDE = 512  # side of the scikit-image texture images


@dataclass
class DigitsOnTextures:
    """A generated digits-on-textures dataset.

    Attributes
    ----------
    background : torch.Tensor
        ``(Nb, 1, S, S)`` float32 in [0, 1]: texture patches.
    target : torch.Tensor
        ``(Nt, 1, S, S)`` float32 in [0, 1]: texture patches with a digit.
    attributes : pandas.DataFrame
        One row per image, background rows first, with columns ``file`` (``bg_00000.png`` /
        ``tg_00000.png``), ``group`` (``background`` / ``target``), ``texture`` (index into
        :data:`TEXTURES`; the common factor), ``texture_name`` and ``digit`` (0..9 for the
        target, -1 for the background; the salient factor).
    """

    background: torch.Tensor
    target: torch.Tensor
    attributes: pd.DataFrame


def _texture_zoom(size: int) -> float:
    """Downsampling factor of the texture images for patches of side ``size``.

    A patch covers a ``3 * size`` region of the 512-pixel source images (so that it holds
    several bricks or pebbles rather than one mortar line), as long as the downsampled image
    stays at least twice the patch side.
    """
    return max(1.0, min(_ZOOM, _SOURCE_SIDE / (2 * size)))


@functools.lru_cache(maxsize=4)
def _texture_images(size: int) -> tuple[np.ndarray, ...]:
    """The texture images for patches of side ``size``: grayscale float32, downsampled by
    :func:`_texture_zoom`, each standardised to mean 0.45 and standard deviation 0.15."""
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.transform import rescale

    zoom = _texture_zoom(size)
    out = []
    for name in TEXTURES:
        image = getattr(skimage.data, name)()
        gray = rgb2gray(image) if image.ndim == 3 else image.astype(np.float64) / 255.0
        if zoom > 1.0:
            gray = rescale(gray, 1.0 / zoom, order=1, anti_aliasing=True)
        gray = (gray - gray.mean()) / gray.std() * _STD + _MEAN
        gray = np.clip(gray, 0.0, 1.0).astype(np.float32)
        gray.setflags(write=False)
        out.append(gray)
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The scikit-learn digits as ``(n, 8, 8)`` float32 in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    images.setflags(write=False)
    return images, bunch.target.astype(np.int64)


def _balanced(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels in ``0..k-1`` whose counts differ by at most one, in random order."""
    return rng.permutation(np.arange(n) % k)


def _patches(labels: np.ndarray, size: int, flips: bool, rng: np.random.Generator) -> np.ndarray:
    """Random ``size x size`` crops (and flips) of the textures given by ``labels``."""
    textures = _texture_images(size)
    n = len(labels)
    out = np.empty((n, size, size), dtype=np.float32)
    u = rng.random((n, 2))
    flip = rng.random((n, 2)) < 0.5
    for i, k in enumerate(labels):
        image = textures[k]
        y = int(u[i, 0] * (image.shape[0] - size + 1))
        x = int(u[i, 1] * (image.shape[1] - size + 1))
        patch = image[y : y + size, x : x + size]
        if flips:
            if flip[i, 0]:
                patch = patch[::-1]
            if flip[i, 1]:
                patch = patch[:, ::-1]
        out[i] = patch
    return out


def _overlay_digits(
    patches: np.ndarray,
    digits: np.ndarray,
    scale: tuple[float, float],
    alpha: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Overlay one digit of each class in ``digits`` on each patch (see the module docstring)."""
    from skimage.transform import resize

    images, targets = _digits()
    n, size = len(patches), patches.shape[-1]
    by_class = [np.flatnonzero(targets == d) for d in range(10)]
    pick = rng.random(n)
    sides = np.rint(rng.uniform(scale[0], scale[1], n) * size).astype(int).clip(2, size)
    pos = rng.random((n, 2))
    out = patches.copy()
    for i, d in enumerate(digits):
        pool = by_class[d]
        mask = resize(
            images[pool[int(pick[i] * len(pool))]],
            (sides[i], sides[i]),
            order=1,
            anti_aliasing=False,
        )
        side = sides[i]
        y = int(pos[i, 0] * (size - side + 1))
        x = int(pos[i, 1] * (size - side + 1))
        region = out[i, y : y + side, x : x + side]
        m = alpha * np.clip(mask, 0.0, 1.0)
        out[i, y : y + side, x : x + side] = region * (1.0 - m) + m
    return out


def make_digits_on_textures(
    n_background: int = 1000,
    n_target: int = 1000,
    size: int = 32,
    seed: int = 0,
    digit_scale: tuple[float, float] = (0.6, 0.75),
    digit_alpha: float = 0.8,
    flips: bool = True,
) -> DigitsOnTextures:
    """Generate the digits-on-textures contrastive-analysis benchmark in memory.

    Background images are texture patches; target images are patches of the same textures with
    a handwritten digit overlaid, so that the texture is a common factor and the digit a salient
    factor in the sense of contrastive analysis [1]_. Textures are balanced within each group
    and digits within the target (counts differ by at most one).

    Parameters
    ----------
    n_background, n_target : int
        Number of background and target images (each at least 1).
    size : int
        Side ``S`` of the square images, from 8 to 512.
    seed : int
        Seed of the :class:`numpy.random.Generator`; the result depends only on the arguments.
    digit_scale : tuple of float
        Range of the digit's side as a fraction of ``size``, drawn uniformly per image.
    digit_alpha : float
        Opacity ``a`` of the digit strokes in [0, 1]; with 0 the targets are plain textures drawn
        with the same random crops as with any other value.
    flips : bool
        Randomly flip patches horizontally and vertically.

    Returns
    -------
    DigitsOnTextures
        The two image tensors and the per-image attributes.

    Raises
    ------
    ConfigError
        If an argument is out of range.
    """
    import pandas as pd

    _check_arguments(n_background, n_target, size, digit_scale, digit_alpha)
    rng = np.random.default_rng(seed)
    k = len(TEXTURES)
    bg_textures = _balanced(n_background, k, rng)
    tg_textures = _balanced(n_target, k, rng)
    tg_digits = _balanced(n_target, 10, rng)
    background = _patches(bg_textures, size, flips, rng)
    target = _patches(tg_textures, size, flips, rng)
    target = _overlay_digits(target, tg_digits, digit_scale, digit_alpha, rng)

    textures = np.concatenate([bg_textures, tg_textures])
    attributes = pd.DataFrame(
        {
            "file": [f"bg_{i:05d}.png" for i in range(n_background)]
            + [f"tg_{i:05d}.png" for i in range(n_target)],
            "group": ["background"] * n_background + ["target"] * n_target,
            "texture": textures.astype(np.int64),
            "texture_name": [TEXTURES[t] for t in textures],
            "digit": np.concatenate([np.full(n_background, -1), tg_digits]).astype(np.int64),
        },
        columns=list(ATTRIBUTE_COLUMNS),
    )
    return DigitsOnTextures(
        background=torch.from_numpy(background[:, None]),
        target=torch.from_numpy(target[:, None]),
        attributes=attributes,
    )


def _check_arguments(
    n_background: int,
    n_target: int,
    size: int,
    digit_scale: tuple[float, float],
    digit_alpha: float,
) -> None:
    for name, value in (("n_background", n_background), ("n_target", n_target)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(
                f"{name} must be a positive integer, got {value!r}", fix=f"pass e.g. {name}=1000"
            )
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 8 <= size <= 512:
        raise ConfigError(
            f"size must be an integer from 8 to 512, got {size!r}", fix="pass e.g. size=32"
        )
    try:
        lo, hi = (float(v) for v in digit_scale)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"digit_scale must be a pair of numbers, got {digit_scale!r}",
            fix="pass e.g. digit_scale=(0.6, 0.75)",
        ) from exc
    if not 0.0 < lo <= hi <= 1.0:
        raise ConfigError(
            f"digit_scale must satisfy 0 < low <= high <= 1, got {digit_scale!r}",
            fix="pass e.g. digit_scale=(0.6, 0.75)",
        )
    if not 0.0 <= float(digit_alpha) <= 1.0:
        raise ConfigError(
            f"digit_alpha must lie in [0, 1], got {digit_alpha!r}", fix="pass e.g. digit_alpha=0.8"
        )


def _png_bytes(image: np.ndarray) -> bytes:
    """Encode a ``(S, S)`` float image in [0, 1] as an 8-bit grayscale PNG."""
    import io

    from PIL import Image

    pixels = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def write_digits_on_textures(out_dir: str | os.PathLike[str], **make_kwargs: object) -> Path:
    """Generate the benchmark and write it as image folders and an attributes CSV.

    Writes ``out_dir/background/bg_*.png`` and ``out_dir/target/tg_*.png`` (8-bit grayscale)
    and ``out_dir/attributes.csv`` (columns ``file, group, texture, texture_name, digit``),
    ready for ``medcl sepclr fit --background out_dir/background --target out_dir/target``.
    Every file is written atomically (temporary file, then rename).

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder to create; it must be missing or empty.
    **make_kwargs
        Passed to :func:`make_digits_on_textures`.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    InputFileError
        If ``out_dir`` is a file or a non-empty folder.
    ConfigError
        As :func:`make_digits_on_textures`.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputFileError(
            "the output path is a file, not a folder",
            path=out,
            fix="choose a new folder for the dataset",
        )
    if out.is_dir() and any(out.iterdir()):
        raise InputFileError(
            "the output folder is not empty",
            path=out,
            fix="choose a new or empty folder (existing files are never overwritten)",
        )
    data = make_digits_on_textures(**make_kwargs)  # type: ignore[arg-type]
    files = data.attributes["file"].tolist()
    images = torch.cat([data.background, data.target])[:, 0].numpy()
    for name, group, image in zip(files, data.attributes["group"], images, strict=True):
        with atomic_path(out / group / name) as tmp:
            tmp.write_bytes(_png_bytes(image))
    write_csv(out / "attributes.csv", data.attributes)
    return out
