"""Skeleton sequences from files (NPY/NPZ + labels CSV), layouts, and the ``synth`` generator.

Files: a folder of ``.npy`` / ``.npz`` files, one sequence each, shaped ``(T, V, C)`` or, with a
person axis first, ``(M, T, V, C)`` (pyskl's ``keypoint`` convention); an ``.npz`` holds one
array (or one named ``keypoint``). Labels: a CSV with columns ``file,label`` (``--labels``, or
``labels.csv`` inside the folder). Sequences are resampled to a common number of frames by
linear interpolation; persons are padded with zeros to the most persons of any file.
Missing joints (NaN) are linearly interpolated in time per joint and coordinate, or refused
(``nan="refuse"``); a joint missing in every frame of a sequence is always refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from medcl.contrastive.sequences.skeleton.graph import LAYOUTS, SkeletonLayout, layout_from_edges
from medcl.io.errors import ConfigError, InputFileError

ACTIONS = ("walk", "wave", "jump", "squat", "kick")
SUFFIXES = (".npy", ".npz")


@dataclass
class SkeletonSet:
    """Sequences ``x (N, C, T, V, M)`` float32, labels ``(N,)`` int or ``None``."""

    x: torch.Tensor
    labels: np.ndarray | None
    classes: list[str] | None
    names: list[str]
    layout: SkeletonLayout
    source: str
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ layouts


def parse_layout(spec: str) -> SkeletonLayout:
    """``ntu25``, ``coco17`` or a text file of 0-based bones, one ``i,j`` (or ``i j``) per
    line, ``#`` comments; joints = largest index + 1, centre = joint of highest degree."""
    if spec in LAYOUTS:
        return LAYOUTS[spec]
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--layout {spec!r} is neither a known layout nor a file",
                          fix=f"use {', '.join(LAYOUTS)} or an edge-list file (i,j per line)")
    edges = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        try:
            i, j = (int(p) for p in parts)
        except ValueError:
            raise InputFileError(f"line {n} is not two joint indices: {line!r}", path=path,
                                 fix="write one bone per line as 'i,j' (0-based)") from None
        if i < 0 or j < 0 or i == j:
            raise InputFileError(f"line {n}: bad bone ({i}, {j})", path=path,
                                 fix="0-based indices of two different joints")
        edges.append((i, j))
    if not edges:
        raise InputFileError("no bones in the edge list", path=path,
                             fix="write one bone per line as 'i,j' (0-based)")
    return layout_from_edges(edges, name=path.name)


# ------------------------------------------------------------------------------ files


def _read_array(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                key = "keypoint" if "keypoint" in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise InputFileError(f"holds {len(keys)} arrays {keys} and none is named "
                                         "'keypoint'", path=path,
                                         fix="save one array per file (or name it keypoint)")
                arr = z[key]
        else:
            arr = np.load(path, allow_pickle=False)
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(f"cannot be read as a NumPy array ({type(exc).__name__})",
                             path=path, fix="save sequences with numpy.save / savez") from exc
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or not np.issubdtype(arr.dtype, np.number):
        raise InputFileError(f"has shape {arr.shape}; expected (T, V, C) or (M, T, V, C)",
                             path=path, fix="one sequence per file, frames x joints x coords")
    return arr.astype(np.float64)  # (M, T, V, C)


def fill_missing(arr: np.ndarray, path: Path, nan: str) -> int:
    """Interpolate NaN joints in time, in place; returns the number of filled frames.

    Raises ``InputFileError`` under ``nan="refuse"`` or when a joint of a present person is
    missing in every frame. A person whose joints are all missing in every frame is zeroed.
    """
    bad = ~np.isfinite(arr)
    if not bad.any():
        return 0
    if nan == "refuse":
        frames = int(bad.any(axis=(0, 2, 3)).sum())
        raise InputFileError(f"{frames} frame(s) have missing (NaN) joints", path=path,
                             fix="rerun with --nan interpolate, or repair the file")
    filled = 0
    t = np.arange(arr.shape[1])
    for m in range(arr.shape[0]):
        if bad[m].all():
            arr[m] = 0.0
            continue
        for v in range(arr.shape[2]):
            for c in range(arr.shape[3]):
                miss = bad[m, :, v, c]
                if not miss.any():
                    continue
                if miss.all():
                    raise InputFileError(f"joint {v} of person {m} is missing in every frame",
                                         path=path, fix="drop the sequence or the joint")
                arr[m, miss, v, c] = np.interp(t[miss], t[~miss], arr[m, ~miss, v, c])
        filled += int(bad[m].any(axis=(1, 2)).sum())
    return filled


def resample(arr: np.ndarray, frames: int) -> np.ndarray:
    """Linear interpolation of ``(M, T, V, C)`` to ``frames`` frames."""
    t = arr.shape[1]
    if t == frames:
        return arr
    pos = np.linspace(0, t - 1, frames)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo)[None, :, None, None]
    return arr[:, lo] * (1 - w) + arr[:, hi] * w


def _read_labels(csv: Path, names: list[str]) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    try:
        table = pd.read_csv(csv, dtype=str)
    except Exception as exc:
        raise InputFileError(f"cannot be read as CSV ({type(exc).__name__})", path=csv,
                             fix="write columns file,label") from exc
    if not {"file", "label"} <= set(table.columns):
        raise InputFileError(f"has columns {list(table.columns)}, needs file,label", path=csv,
                             fix="write a header line 'file,label'")
    mapping = dict(zip(table["file"].str.strip(), table["label"].str.strip(), strict=True))
    missing = [n for n in names if n not in mapping]
    if missing:
        raise InputFileError(f"has no label for {len(missing)} sequence(s), e.g. {missing[0]}",
                             path=csv, fix="add a row file,label for every sequence file")
    classes = sorted({mapping[n] for n in names})
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[mapping[n]] for n in names]), classes


def load_folder(folder: Path, layout: SkeletonLayout, frames: int, nan: str = "interpolate",
                labels_csv: Path | None = None) -> SkeletonSet:
    """Read every ``.npy``/``.npz`` of ``folder`` (sorted), checked against ``layout``."""
    if nan not in ("interpolate", "refuse"):
        raise ConfigError(f"--nan must be interpolate or refuse, got {nan!r}")
    if not folder.is_dir():
        raise InputFileError("is not a folder of .npy/.npz sequences", path=folder,
                             fix="give --data synth or a folder of sequence files")
    files = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())
    if not files:
        raise InputFileError("holds no .npy or .npz sequence", path=folder,
                             fix="one sequence per file, shaped (T, V, C) or (M, T, V, C)")
    arrays, notes, filled, fixed = [], [], 0, 0
    channels = None
    for path in files:
        arr = _read_array(path)
        if arr.shape[2] != layout.num_joints:
            raise ConfigError(f"{path.name} has {arr.shape[2]} joints but layout "
                              f"{layout.name} has {layout.num_joints}", path=path,
                              fix="choose the matching --layout (ntu25, coco17 or an edge list)")
        if channels is None:
            channels = arr.shape[3]
        elif arr.shape[3] != channels:
            raise InputFileError(f"has {arr.shape[3]} coordinates per joint, other files "
                                 f"{channels}", path=path, fix="use one coordinate count")
        n = fill_missing(arr, path, nan)
        if n:
            filled += n
            fixed += 1
        arrays.append(resample(arr, frames))
    if filled:
        notes.append(f"{filled} frame(s) with missing (NaN) joints in {fixed} file(s) were "
                     "filled by linear interpolation in time")
    persons = max(a.shape[0] for a in arrays)
    x = np.zeros((len(arrays), persons, frames, layout.num_joints, channels), dtype=np.float32)
    for i, a in enumerate(arrays):
        x[i, : a.shape[0]] = a
    lengths = {a.shape[1] for a in arrays}
    notes.append(f"{len(files)} sequences resampled to {frames} frames, {persons} person(s), "
                 f"{channels}-D, layout {layout.name}" + (" (lengths varied)"
                                                          if len(lengths) > 1 else ""))
    names = [p.name for p in files]
    csv = labels_csv if labels_csv is not None else (folder / "labels.csv")
    labels = classes = None
    if labels_csv is not None or csv.is_file():
        labels, classes = _read_labels(Path(csv), names)
    tensor = torch.from_numpy(x).permute(0, 4, 2, 3, 1).contiguous()  # (N, C, T, V, M)
    return SkeletonSet(tensor, labels, classes, names, layout, str(folder), notes)


# ------------------------------------------------------------------------------ synth

# NTU-25 joints (0-based): 0 spine base, 1 spine mid, 2 neck, 3 head, 4-7 left shoulder, elbow,
# wrist, hand, 8-11 right arm, 12-15 left hip, knee, ankle, foot, 16-19 right leg,
# 20 spine shoulder, 21/22 left hand tip/thumb, 23/24 right hand tip/thumb.


def _limb_dir(pitch: np.ndarray, abduct: np.ndarray, side: float) -> np.ndarray:
    """Unit vector of a limb hanging down, swung forward by ``pitch`` and sideways by
    ``abduct`` (x right, y up, z forward). Shapes ``(T,)`` -> ``(T, 3)``."""
    return np.stack([side * np.sin(abduct), -np.cos(abduct) * np.cos(pitch),
                     np.cos(abduct) * np.sin(pitch)], -1)


def _pose(action: str, t: np.ndarray, rng: np.random.Generator, body: dict) -> np.ndarray:
    """One sequence ``(T, 25, 3)`` of ``action`` at phase ``t`` (radians, per frame)."""
    z = np.zeros_like(t)
    s = np.sin(t)
    # arm: pitch, abduction, elbow flex; leg: thigh pitch, knee flex
    arm = {"l": [z + 0.1, z + 0.15, z + 0.2], "r": [z + 0.1, z + 0.15, z + 0.2]}
    leg = {"l": [z.copy(), z.copy()], "r": [z.copy(), z.copy()]}  # thigh pitch, knee flex
    lift, lean, forward = z.copy(), z.copy(), z.copy()
    if action == "walk":
        leg["l"] = [0.45 * s, 0.35 * (1 + np.sin(t + 1.2))]
        leg["r"] = [-0.45 * s, 0.35 * (1 + np.sin(t + 1.2 + np.pi))]
        arm["l"][0], arm["r"][0] = -0.4 * s, 0.4 * s
        forward = 0.12 * t
    elif action == "wave":
        arm["r"] = [z + 0.2, z + 2.5, 0.7 + 0.5 * s]
    elif action == "jump":
        up = np.clip(s, 0, None)
        crouch = np.clip(-s, 0, None)
        for side in "lr":
            leg[side] = [0.6 * crouch, 1.2 * crouch]
            arm[side] = [-0.5 * crouch + 2.0 * up, z + 0.2, z + 0.3]
        lift = 0.35 * up
        lean = 0.3 * crouch
    elif action == "squat":
        down = 0.5 * (1 - np.cos(t))
        for side in "lr":
            leg[side] = [1.3 * down, 2.2 * down]
            arm[side] = [1.4 * down, z + 0.1, z + 0.1]
        lean = 0.5 * down
    elif action == "kick":
        kick = np.clip(s, 0, None) ** 2
        leg["r"] = [1.4 * kick, 0.4 * (1 - kick) * np.clip(s, 0, None)]
        arm["l"][0], arm["r"][0] = 0.5 * kick, -0.4 * kick
        lean = -0.2 * kick
    b = body
    joints = np.zeros((len(t), 25, 3))
    # legs first: pelvis height keeps the lowest foot on the ground
    ext = {}
    for side, sign in (("l", -1.0), ("r", 1.0)):
        pitch, flex = leg[side]
        thigh = _limb_dir(pitch, z, sign) * b["thigh"]
        shin = _limb_dir(pitch - flex, z, sign) * b["shin"]
        ext[side] = (thigh, shin)
    height = np.maximum(-(ext["l"][0] + ext["l"][1])[:, 1], -(ext["r"][0] + ext["r"][1])[:, 1])
    pelvis = np.stack([z, height + lift, forward], -1)
    joints[:, 0] = pelvis
    up = np.stack([z, np.cos(lean), np.sin(lean)], -1)
    joints[:, 1] = pelvis + up * b["torso"] * 0.5
    joints[:, 20] = pelvis + up * b["torso"]
    joints[:, 2] = pelvis + up * (b["torso"] + 0.06)
    joints[:, 3] = pelvis + up * (b["torso"] + 0.2)
    for side, sign, base in (("l", -1.0, 12), ("r", 1.0, 16)):
        hip = pelvis + np.array([sign * b["hips"], 0, 0])
        thigh, shin = ext[side]
        joints[:, base] = hip
        joints[:, base + 1] = hip + thigh
        joints[:, base + 2] = hip + thigh + shin
        joints[:, base + 3] = joints[:, base + 2] + np.array([0, -0.03, 0.12])
    for side, sign, base, tip in (("l", -1.0, 4, 21), ("r", 1.0, 8, 23)):
        pitch, abd, elbow = arm[side]
        sh = joints[:, 20] + np.array([sign * b["shoulders"], -0.03, 0])
        upper = _limb_dir(pitch, abd, sign) * b["upper"]
        fore = _limb_dir(pitch + elbow, abd, sign) * b["fore"]
        joints[:, base] = sh
        joints[:, base + 1] = sh + upper
        joints[:, base + 2] = sh + upper + fore
        hand = fore / b["fore"] * 0.08
        joints[:, base + 3] = joints[:, base + 2] + hand
        joints[:, tip] = joints[:, base + 3] + hand * 0.6
        joints[:, tip + 1] = joints[:, base + 2] + hand * 0.5 + np.array([0, 0, 0.03])
    return joints


def synth(n_per_class: int = 40, frames: int = 20, seed: int = 0, noise: float = 0.05,
          max_yaw_degrees: float = 180.0) -> SkeletonSet:
    """Stick-figure sequences of ``walk, wave, jump, squat, kick`` in the NTU-25 layout.

    Each sequence varies the person (height 0.8-1.2 and limb proportions +-10 %), the speed
    (0.6-1.4 cycles per sequence around one), the phase, the viewpoint (rotation about the
    vertical axis up to ``max_yaw_degrees`` and a tilt up to 10 degrees) and the joint noise
    (Gaussian, std ``noise`` x height). Coordinates are in metres-like units centred on the
    first frame's spine base, as NTU preprocessing does.
    """
    rng = np.random.default_rng(seed)
    xs, labels = [], []
    for c, action in enumerate(ACTIONS):
        for _ in range(n_per_class):
            h = rng.uniform(0.8, 1.2)
            base = {"thigh": 0.45, "shin": 0.43, "torso": 0.55, "upper": 0.3, "fore": 0.27,
                    "hips": 0.1, "shoulders": 0.18}
            body = {k: v * h * rng.uniform(0.9, 1.1) for k, v in base.items()}
            cycles = rng.uniform(0.6, 1.4)
            t = rng.uniform(0, 2 * np.pi) * (action != "squat") + \
                np.linspace(0, 2 * np.pi * cycles, frames)
            j = _pose(action, t, rng, body)
            yaw = math.radians(rng.uniform(-max_yaw_degrees, max_yaw_degrees))
            tilt = math.radians(rng.uniform(-10, 10))
            ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0],
                           [-math.sin(yaw), 0, math.cos(yaw)]])
            rx = np.array([[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)],
                           [0, math.sin(tilt), math.cos(tilt)]])
            j = j @ (rx @ ry).T
            j = j - j[0, 0]
            j = j + rng.normal(0, noise * h, j.shape)
            xs.append(j)
            labels.append(c)
    x = torch.tensor(np.stack(xs), dtype=torch.float32)  # (N, T, V, C)
    x = x.permute(0, 3, 1, 2).unsqueeze(-1).contiguous()
    names = [f"synth_{ACTIONS[y]}_{i:04d}" for i, y in enumerate(labels)]
    note = (f"synth: {len(xs)} stick-figure sequences ({n_per_class} per action: "
            f"{', '.join(ACTIONS)}), {frames} frames, NTU-25 layout, seed {seed}")
    return SkeletonSet(x, np.array(labels), list(ACTIONS), names, LAYOUTS["ntu25"], "synth",
                       [note])


def load_data(data: str, layout: str, frames: int, *, nan: str = "interpolate",
              labels: Path | None = None, seed: int = 0, n_per_class: int = 40) -> SkeletonSet:
    """``synth`` (NTU-25 only) or a folder."""
    lay = parse_layout(layout)
    if data == "synth":
        if lay.name != "ntu25":
            raise ConfigError(f"--data synth writes the NTU-25 layout, not {lay.name}",
                              fix="drop --layout or use --layout ntu25 with synth")
        return synth(n_per_class=n_per_class, frames=frames, seed=seed)
    return load_folder(Path(data), lay, frames, nan=nan, labels_csv=labels)
