"""Slice-wise promptable inference with an image-embedding cache.

The image encoder (ViT + conv branch for DB-SAM) is by far the expensive part: 13-16 s per
1024² slice for ViT-B on a 2-core CPU against ~0.1 s for the prompt encoder and mask decoder.
:class:`SliceSegmenter` therefore keeps each slice's embedding, so re-prompting a slice (a new
box, a propagated box, a mask prompt, another label) re-runs only the decoder.

Prompt modes of ``medcl dbsam segment`` (all boxes in the input file's voxel indices):

- a 3-D box ``X0,Y0,Z0,X1,Y1,Z1``: one 2-D box per slice it spans;
- a 2-D box on a key slice ``Z:X0,Y0,X1,Y1``: the key slice is segmented, then the box of each
  slice's predicted mask prompts the next slice, up and down, until the structure ends
  (LiteMedSAM-style propagation);
- a coarse mask (NIfTI, one code per structure): per label and slice, the mask's box plus the
  mask itself as a dense prompt; the result is a label map.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from medcl.io import ConfigError

from .data import CaseData


class SliceSegmenter:
    """Box/mask-prompted segmentation of a case's slices with cached image embeddings.

    Parameters
    ----------
    model : PromptableSegmenter
        ``embed(images)`` and ``decode(embeddings, boxes, mask_prompt)`` (see ``model.py``).
    case : CaseData
        The slices to segment.
    cache_size : int
        Embeddings kept (least recently used dropped first); one 1024² embedding is 4 MB.
    device : str or torch.device
    """

    def __init__(self, model: torch.nn.Module, case: CaseData, *, cache_size: int = 64,
                 device: str | torch.device = "cpu"):
        self.model = model.eval().to(device)
        self.case = case
        self.device = torch.device(device)
        self.cache_size = cache_size
        self._cache: OrderedDict[int, tuple[torch.Tensor, object]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)

    @torch.no_grad()
    def embedding(self, z: int) -> tuple[torch.Tensor, object]:
        """``(embedding (1, 256, g, g), SliceGeometry)`` of slice ``z`` (cached)."""
        from .preprocess import slice_to_input

        if z in self._cache:
            self.hits += 1
            self._cache.move_to_end(z)
            return self._cache[z]
        self.misses += 1
        x, geom = slice_to_input(self.case.slices[z], self.image_size,
                                 getattr(self.model, "style", "sam"))
        emb = self.model.embed(x[None].to(self.device))
        self._cache[z] = (emb, geom)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return emb, geom

    @torch.no_grad()
    def logits(self, z: int, box: np.ndarray | None = None,
               mask_prompt: np.ndarray | None = None) -> np.ndarray:
        """Mask logits ``(H, W)`` of slice ``z`` for a box (slice pixels) and/or mask prompt."""
        emb, geom = self.embedding(z)
        boxes = None
        if box is not None:
            boxes = torch.as_tensor(geom.box_to_input(np.asarray(box, float)),
                                    dtype=torch.float32, device=self.device)[None]
        dense = None
        if mask_prompt is not None:
            dense = torch.as_tensor(geom.mask_to_input(np.asarray(mask_prompt, bool)),
                                    dtype=torch.float32, device=self.device)[None, None]
        low = self.model.decode(emb, boxes, dense)
        return geom.logits_to_slice(low[0, 0].float().cpu())

    def predict(self, z: int, box: np.ndarray | None = None,
                mask_prompt: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask ``(H, W)`` (logit > 0)."""
        return self.logits(z, box, mask_prompt) > 0


def _progress(show: bool) -> Progress:
    return Progress(disable=not show, transient=True)


def stack(masks: dict[int, np.ndarray], case: CaseData, value: int = 1) -> list[np.ndarray]:
    """Per-slice masks -> a full list of ``(H, W)`` uint8 slices (``value`` inside)."""
    h, w = case.slices[0].shape[:2]
    out = [np.zeros((h, w), np.uint8) for _ in case.slices]
    for z, m in masks.items():
        out[z][m] = value
    return out


def merge_labels(logit_maps: dict[int, dict[int, np.ndarray]], case: CaseData) -> list[np.ndarray]:
    """``{label: {z: logits (H, W)}}`` -> label map per slice; overlaps go to the larger logit."""
    h, w = case.slices[0].shape[:2]
    out = []
    for z in range(len(case.slices)):
        best = np.zeros((h, w), np.float32)
        lab = np.zeros((h, w), np.uint8 if max(logit_maps, default=0) < 256 else np.int32)
        for code, per_z in logit_maps.items():
            if z in per_z:
                win = (per_z[z] > 0) & ((lab == 0) | (per_z[z] > best))
                lab[win] = code
                best[win] = per_z[z][win]
        out.append(lab)
    return out


def ras_box(case: CaseData, lo: tuple[int, int, int], hi: tuple[int, int, int],
            flag: str) -> tuple[int, int, int, int, int, int]:
    """A box given by two corners in the file's voxel indices -> the same box in RAS indices."""
    shape = case.vol.shape if case.vol is not None else case.ras_shape
    for corner in (lo, hi):
        if any(c < 0 or c >= s for c, s in zip(corner, shape, strict=True)):
            raise ConfigError(
                f"{flag} corner {tuple(corner)} is outside the volume of shape {tuple(shape)} "
                f"({case.path})", fix="give voxel indices 0 <= index < shape on each axis")
    if case.can is None:
        a, b = np.asarray(lo), np.asarray(hi)
    else:
        a, b = case.can.index_forward(lo), case.can.index_forward(hi)
    mn, mx = np.minimum(a, b), np.maximum(a, b)
    return (int(mn[0]), int(mn[1]), int(mn[2]), int(mx[0]), int(mx[1]), int(mx[2]))


def segment_box3d(seg: SliceSegmenter, box6: tuple[int, ...], *,
                  progress: bool = False) -> dict[int, np.ndarray]:
    """``--box X0,Y0,Z0,X1,Y1,Z1`` (file voxel indices) -> mask logits ``{z: (H, W)}`` of the
    slices the box spans."""
    from .prompts import box3d_to_slices

    case = seg.case
    rb = ras_box(case, tuple(box6[:3]), tuple(box6[3:]), "--box")
    boxes = box3d_to_slices(rb, case.ras_shape)
    with _progress(progress) as bar:
        return {z: seg.logits(z, boxes[z]) for z in bar.track(sorted(boxes),
                                                               description="slices")}


def segment_labelled_boxes(seg: SliceSegmenter, boxes: list[tuple[int, tuple[int, ...]]], *,
                           progress: bool = False) -> list[np.ndarray]:
    """Several ``(code, 3-D box)`` prompts -> one label map (overlaps go to the larger logit;
    boxes sharing a code are united). Slices shared by several boxes are embedded once."""
    logit_maps: dict[int, dict[int, np.ndarray]] = {}
    for code, box6 in boxes:
        per_z = logit_maps.setdefault(code, {})
        for z, lg in segment_box3d(seg, box6, progress=progress).items():
            per_z[z] = np.maximum(per_z[z], lg) if z in per_z else lg
    return merge_labels(logit_maps, seg.case)


def segment_key_slice(seg: SliceSegmenter, z: int, box4: tuple[int, ...], *,
                      margin: int = 2, progress: bool = False) -> list[np.ndarray]:
    """``--box-slice Z:X0,Y0,X1,Y1`` -> propagated per-slice uint8 masks.

    The key slice is a slice of the file's third voxel axis, which must be the slice axis of the
    RAS orientation too (an axial-stored scan); otherwise use a 3-D box.
    """
    from .prompts import propagate

    case = seg.case
    if case.can is not None and int(case.can.to_ras[2, 0]) != 2:
        raise ConfigError(
            f"the file's third voxel axis is not its superior-inferior axis ({case.path}), so "
            "a box on one stored slice is not an axial box", fix="pass a 3-D box with --box")
    x0, y0, x1, y1 = box4
    rb = ras_box(case, (x0, y0, z), (x1, y1, z), "--box-slice")
    key_z = rb[2]
    key_box = np.array([rb[0], rb[1], rb[3], rb[4]])
    h, w = case.slices[0].shape[:2]
    with _progress(progress) as bar:
        task = bar.add_task("slices", total=None)

        def predict(zz: int, box: np.ndarray) -> np.ndarray:
            bar.advance(task)
            return seg.predict(zz, box)

        masks = propagate(predict, key_z, key_box, len(case.slices), margin=margin,
                          shape=(h, w))
    return stack(masks, case)


def segment_prompt_mask(seg: SliceSegmenter, coarse: list[np.ndarray], *,
                        progress: bool = False, path: Path | None = None) -> list[np.ndarray]:
    """A coarse label map (slices ``(H, W)``, one code per structure) -> refined label map;
    ``path``: the prompt-mask file, named in the error for an empty mask."""
    from .prompts import mask_box

    codes = sorted({int(c) for s in coarse for c in np.unique(s) if c != 0})
    if not codes:
        raise ConfigError("the prompt mask is empty", path=path,
                          fix="draw the structure (non-zero voxels) in the prompt mask")
    logit_maps: dict[int, dict[int, np.ndarray]] = {}
    todo = [(code, z) for code in codes for z, s in enumerate(coarse) if (s == code).any()]
    with _progress(progress) as bar:
        for code, z in bar.track(todo, description="slices"):
            m = coarse[z] == code
            logit_maps.setdefault(code, {})[z] = seg.logits(z, mask_box(m), m)
    return merge_labels(logit_maps, seg.case)


def predict_label(seg: SliceSegmenter, code: int, margin: int,
                  on_slice: Callable[[], None] | None = None) -> np.ndarray:
    """Evaluation prompt: the label's tight box grown by ``margin`` pixels of a 256² slice
    (scaled to the slice, :func:`medcl.dbsam.prompts.px_at_256`; DB-SAM's test loader: 9 px) on
    every slice holding it; returns the predicted binary volume ``(Z, H, W)``."""
    from .prompts import expand_box, mask_box, px_at_256

    case = seg.case
    assert case.labels is not None
    h, w = case.slices[0].shape[:2]
    grow = px_at_256(margin, (h, w))
    out = np.zeros((len(case.slices), h, w), bool)
    for z, lab in enumerate(case.labels):
        m = lab == code
        if not m.any():
            continue
        out[z] = seg.predict(z, expand_box(mask_box(m), grow, (h, w)))
        if on_slice is not None:
            on_slice()
    return out


def segment_file(model: torch.nn.Module, cfg, image: Path, out: Path, *,
                 box: str | list[str] | None = None, box_slice: str | None = None,
                 prompt_mask: Path | None = None, label: int = 1,
                 progress: bool = False, figure: Path | None = None,
                 series: str | None = None) -> dict:
    """``medcl dbsam segment``: read, prompt, segment slice by slice, write in the input geometry.

    Exactly one of ``box`` (one or several 3-D boxes, each optionally ``CODE=X0,...``, else
    ``label``), ``box_slice``, ``prompt_mask`` is given. ``figure``: also a PNG of the slice
    with the most mask pixels, with the mask's box (:func:`medcl.dbsam.evaluate.
    segment_figure_file`). ``series``: the SeriesInstanceUID to read when ``image`` is a DICOM
    folder holding several series; a DICOM series in may give a DICOM SEG out (``*.dcm``).
    """
    from medcl.io import refuse_overwrite

    from .data import is_2d, load_case, read_label_slices, write_mask
    from .prompts import check_code, parse_box_slice, parse_labelled_box

    if isinstance(box, str):
        box = [box]
    given = [n for n, v in (("--box", box or None), ("--box-slice", box_slice),
                            ("--prompt-mask", prompt_mask)) if v is not None]
    if len(given) != 1:
        raise ConfigError(f"give exactly one prompt; got {given or 'none'}",
                          fix="pass --box, --box-slice or --prompt-mask")
    inputs = [image] + ([prompt_mask] if prompt_mask is not None else [])
    refuse_overwrite(out, inputs)
    if is_2d(image) != Path(out).name.lower().endswith(".png"):
        raise ConfigError("the output type must match the input (NIfTI -> .nii.gz, image -> "
                          ".png)", path=out, fix="rename the output")
    # parse prompts before the (slow) model work so a typo fails fast
    check_code(label, "--label")
    boxes = [parse_labelled_box(b, label) for b in box] if box else None
    key = parse_box_slice(box_slice) if box_slice is not None else None
    case = load_case(image, None, cfg, series=series)
    seg = SliceSegmenter(model, case)
    if boxes is not None:
        masks = segment_labelled_boxes(seg, boxes, progress=progress)
    elif key is not None:
        z, b = key
        masks = [m * np.uint8(label) for m in segment_key_slice(seg, z, b, progress=progress)]
    else:
        coarse = read_label_slices(prompt_mask, case)
        masks = segment_prompt_mask(seg, coarse, progress=progress, path=prompt_mask)

    write_mask(case, masks, out)
    if figure is not None:
        from .evaluate import segment_figure_file
        from .prompts import mask_box

        z = int(np.argmax([int((m > 0).sum()) for m in masks]))
        mb = mask_box(masks[z] > 0)
        segment_figure_file(figure, case.slices[z], masks[z], [] if mb is None else [mb],
                            f"{Path(image).name} slice {z}")
    voxels = int(sum(int((m > 0).sum()) for m in masks))
    slices = int(sum(bool((m > 0).any()) for m in masks))
    return {"out": str(out), "voxels": voxels, "slices": slices,
            "embeddings": seg.misses, "cache_hits": seg.hits}
