"""Images with captions for ``medcl core t2i`` and ``medcl core itm``.

``shapes`` is an offline generator: square scenes of one main coloured shape (circle, square,
triangle, or a handwritten digit from scikit-learn's digits), sometimes a second small object
beside it, several templated captions per image and the class label "<shape>-<colour>" of the
main object. A folder ``DIR`` holds images and ``DIR/captions.csv`` with columns
``file,caption[,label]`` (file relative to DIR; several rows per image allowed). Every check
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

KINDS = ("circle", "square", "triangle", "digit")
COLOURS = {"red": (0.92, 0.15, 0.12), "green": (0.15, 0.78, 0.2), "blue": (0.2, 0.35, 0.95)}
RELATIONS = {"above": (-1, 0), "below": (1, 0), "left of": (0, -1), "right of": (0, 1)}
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CAPTIONS_FILE = "captions.csv"


@dataclass
class TextImageSet:
    """Images ``(N, 3, S, S)`` in [0, 1]; ``captions`` (M) with ``caption_image`` (M,), the
    image each describes; labels ``(N,)`` or ``None`` with class names; notes for the report."""

    images: Tensor
    names: list[str]
    captions: list[str]
    caption_image: np.ndarray
    labels: np.ndarray | None
    classes: list[str] | None
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def captions_of(self) -> list[np.ndarray]:
        """Caption indices of every image."""
        order = np.argsort(self.caption_image, kind="stable")
        bounds = np.searchsorted(self.caption_image[order], np.arange(len(self.images) + 1))
        return [order[bounds[i]:bounds[i + 1]] for i in range(len(self.images))]

    def subset(self, idx: np.ndarray) -> TextImageSet:
        """The images ``idx`` (in that order) with their captions."""
        idx = np.asarray(idx)
        remap = -np.ones(len(self.images), dtype=np.int64)
        remap[idx] = np.arange(len(idx))
        keep = np.flatnonzero(remap[self.caption_image] >= 0)
        order = keep[np.argsort(remap[self.caption_image[keep]], kind="stable")]
        return TextImageSet(self.images[torch.as_tensor(idx)], [self.names[i] for i in idx],
                            [self.captions[k] for k in order], remap[self.caption_image[order]],
                            None if self.labels is None else self.labels[idx], self.classes,
                            self.source, list(self.notes))


# -- shapes ------------------------------------------------------------------------------------
def _mask(kind: str, size: int, cy: float, cx: float, r: float, digit: np.ndarray | None
          ) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    if kind == "circle":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == "square":
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    if kind == "triangle":
        t = (yy - (cy - r)) / (2 * r)
        return (t >= 0) & (t <= 1) & (np.abs(xx - cx) <= r * t)
    assert digit is not None
    # nearest-neighbour scaling of the 8x8 digit onto a 2r x 2r box
    v = np.floor((yy - (cy - r)) / (2 * r) * 8).astype(int)
    u = np.floor((xx - (cx - r)) / (2 * r) * 8).astype(int)
    inside = (v >= 0) & (v < 8) & (u >= 0) & (u < 8)
    out = np.zeros((size, size), dtype=bool)
    out[inside] = digit[v[inside], u[inside]] > 0.35
    return out


def _name(kind: str, digit: int) -> str:
    return f"digit {DIGIT_WORDS[digit]}" if kind == "digit" else kind


def make_shapes(n_images: int = 800, size: int = 64, seed: int = 0,
                captions_per_image: int = 4) -> TextImageSet:
    """The ``shapes`` set: ``n_images`` scenes of ``size`` x ``size`` with
    ``captions_per_image`` captions each and 12 classes (4 shapes x 3 colours)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    dimg, dlab = digits.images / 16.0, digits.target
    rng = np.random.default_rng(seed)
    colours = list(COLOURS)
    classes = [f"{k}-{c}" for k in KINDS for c in colours]
    images = np.zeros((n_images, 3, size, size), dtype=np.float32)
    captions: list[str] = []
    cap_img: list[int] = []
    labels = np.zeros(n_images, dtype=np.int64)
    s = size / 64.0
    for i in range(n_images):
        img = np.full((3, size, size), 0.08, dtype=np.float64)
        img += rng.normal(0, 0.02, img.shape)
        kind, colour = KINDS[rng.integers(4)], colours[rng.integers(3)]
        labels[i] = classes.index(f"{kind}-{colour}")
        big = bool(rng.integers(2))
        r = (14 if big else 9) * s
        cy, cx = rng.uniform(18 * s, size - 18 * s, 2)
        d = int(rng.integers(len(dimg)))
        rgb = np.array(COLOURS[colour]) + rng.normal(0, 0.04, 3)
        img[:, _mask(kind, size, cy, cx, r, dimg[d])] = np.clip(rgb, 0, 1)[:, None]
        words = {"size": "large" if big else "small", "colour": colour,
                 "kind": _name(kind, int(dlab[d]))}
        second = None
        if rng.random() < 0.5:
            rel = list(RELATIONS)[rng.integers(4)]
            dy, dx = RELATIONS[rel]
            # the second object sits on the other side of the relation, e.g. "A above B":
            # B below A
            oy = float(np.clip(cy - dy * (r + 9 * s), 6 * s, size - 6 * s))
            ox = float(np.clip(cx - dx * (r + 9 * s), 6 * s, size - 6 * s))
            k2 = KINDS[rng.integers(3)]
            c2 = colours[rng.integers(3)]
            img[:, _mask(k2, size, oy, ox, 5.5 * s, None)] = np.array(COLOURS[c2])[:, None]
            second = f"{rel} a {c2} {k2}"
        templates = [
            "a {size} {colour} {kind}",
            "a {colour} {kind} on a dark background",
            "there is a {size} {kind} in {colour}",
            "{size} {colour} {kind} in the picture",
            "a picture of a {colour} {kind}",
        ]
        texts = [t.format(**words) for t in templates]
        texts.append(f"a {words['colour']} {words['kind']} {second}" if second
                     else f"a single {words['size']} {words['colour']} {words['kind']}")
        pick = rng.choice(len(texts), size=min(captions_per_image, len(texts)), replace=False)
        if second:  # keep the relational caption among them
            pick[0] = len(texts) - 1
        for k in sorted(set(int(p) for p in pick)):
            captions.append(texts[k])
            cap_img.append(i)
        images[i] = np.clip(img, 0, 1)
    return TextImageSet(torch.from_numpy(images), [f"shape_{i:05d}" for i in range(n_images)],
                        captions, np.asarray(cap_img, dtype=np.int64), labels, classes,
                        f"shapes ({n_images} generated {size}x{size} scenes, seed {seed})")


# -- folders -----------------------------------------------------------------------------------
def read_folder(root: str | Path, image_size: int | None = None) -> TextImageSet:
    """Images of ``root`` named by ``root/captions.csv`` (``file,caption[,label]``).

    Images of other sizes than ``image_size`` (default: the most common size, made square)
    are resized (noted); grey images are repeated to RGB (noted).
    """
    from medcl.io.images import read_image

    root = Path(root)
    if not root.is_dir():
        raise InputFileError("not a folder", path=root,
                             fix="give --data shapes or a folder with images and captions.csv")
    table = root / CAPTIONS_FILE
    if not table.is_file():
        raise InputFileError(f"no {CAPTIONS_FILE} in the folder", path=root,
                             fix=f"write {CAPTIONS_FILE} with columns file,caption[,label]")
    with open(table, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        if "file" not in fields or "caption" not in fields:
            raise InputFileError(f"header {fields} lacks 'file' and 'caption'", path=table,
                                 fix="the first line must be file,caption[,label]")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    if not rows:
        raise InputFileError("has no caption rows", path=table, fix="add file,caption rows")
    has_label = "label" in fields
    for n, r in enumerate(rows, start=2):
        if not r["file"]:
            raise InputFileError(f"line {n}: empty file name", path=table,
                                 fix="give every row an image file")
        if not r["caption"]:
            raise InputFileError(f"line {n}: empty caption for {r['file']}", path=table,
                                 fix="write a caption or remove the row")
        if has_label and not r["label"]:
            raise InputFileError(f"line {n}: empty label for {r['file']}", path=table,
                                 fix="give every row a label or drop the label column")
    files = list(dict.fromkeys(r["file"] for r in rows))
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise InputFileError(f"names {len(missing)} missing image(s), e.g. {missing[0]!r}",
                             path=table, fix="fix the file names or remove their rows")
    label_of: dict[str, str] = {}
    for r in rows:
        if has_label and label_of.setdefault(r["file"], r["label"]) != r["label"]:
            raise InputFileError(f"{r['file']} has two labels ({label_of[r['file']]!r}, "
                                 f"{r['label']!r})", path=table, fix="give one label per image")
    arrays = [read_image(root / f)[0] for f in files]
    sizes = Counter(a.shape[:2] for a in arrays)
    common = sizes.most_common(1)[0][0]
    target = image_size or max(common)
    notes = []
    resized = sum(1 for a in arrays if a.shape[:2] != (target, target))
    if resized:
        notes.append(f"{resized} of {len(arrays)} images were resized to {target}x{target}"
                     + (f" (sizes {sorted(sizes)})" if len(sizes) > 1 else ""))
    grey = sum(1 for a in arrays if a.shape[2] == 1)
    if grey:
        notes.append(f"{grey} grey image(s) were repeated to RGB")
    out = torch.empty(len(arrays), 3, target, target)
    for i, a in enumerate(arrays):
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()
        t = t.expand(3, -1, -1) if t.shape[0] == 1 else t
        if t.shape[1:] != (target, target):
            t = torch.nn.functional.interpolate(t[None], size=(target, target), mode="bilinear",
                                                align_corners=False, antialias=True)[0]
        out[i] = t.clamp(0, 1)
    index = {f: i for i, f in enumerate(files)}
    labels = classes = None
    if has_label:
        classes = sorted(set(label_of.values()))
        labels = np.array([classes.index(label_of[f]) for f in files], dtype=np.int64)
    return TextImageSet(out, files, [r["caption"] for r in rows],
                        np.array([index[r["file"]] for r in rows], dtype=np.int64), labels,
                        classes, f"{root} ({len(files)} images, {len(rows)} captions)", notes)


def load_text_images(data: str, image_size: int = 64, seed: int = 0,
                     n_shapes: int = 800) -> TextImageSet:
    """``shapes`` (generated at ``image_size``) or a folder resized to ``image_size``."""
    if data == "shapes":
        return make_shapes(n_shapes, image_size, seed)
    return read_folder(data, image_size)


def split(data: TextImageSet, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train / test image indices (seeded); at least one test image when possible."""
    n = len(data.images)
    perm = np.random.default_rng(seed).permutation(n)
    k = min(n - 2, max(1, int(round(test_size * n)))) if n >= 4 else 0
    return np.sort(perm[k:]), np.sort(perm[:k])


def check_enough(data: TextImageSet, n: int, what: str) -> None:
    if n < 2:
        raise ConfigError(f"{data.source} gives {n} {what} image(s), need at least 2",
                          fix="give a folder with more images")


def image_grid(images: Tensor, nrow: int = 8, titles: list[str] | None = None):
    """A matplotlib figure of images ``(N, 3, H, W)`` in [0, 1] (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    ncol = min(nrow, n)
    nr = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nr, ncol, figsize=(1.3 * ncol, 1.3 * nr + (0.3 if titles else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k].permute(1, 2, 0).clamp(0, 1).numpy())
            if titles:
                ax.set_title(titles[k], fontsize=5)
    fig.tight_layout()
    return fig
