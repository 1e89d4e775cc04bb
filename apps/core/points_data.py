"""Point clouds from files and the offline ``scenes`` generator, and view pairs for training.

Files: PLY (``plyfile``; vertex x, y, z and optional scalar ``label``/``class``/``semantic``),
LAS/LAZ (``laspy``, LAZ through ``lazrs``; ``classification`` as labels), NPY (N x 3, extra
columns ignored) and NPZ (``xyz`` or ``points``, optional ``labels``). Per-point labels may also
come from a sibling ``<stem>.npy`` or from ``--labels DIR/<stem>.npy``.

``scenes``: rooms made of trimesh primitives (boxes, cylinders, spheres, cones) on a floor with
two walls. Each view is a scan from a viewpoint inside the room (points facing away from it are
occluded, points beyond a random range are out of view), resampled, jittered and rotated about
the vertical axis; the two views overlap partially and the true correspondence is known (the
same surface sample). Semantic classes: floor, wall, box, cylinder, sphere, cone; a scene's
class is its most frequent object shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medcl.io.errors import ConfigError, InputFileError

SUFFIXES = (".ply", ".las", ".laz", ".npy", ".npz")
SCENE_CLASSES = ["floor", "wall", "box", "cylinder", "sphere", "cone"]
SHAPES = ["box", "cylinder", "sphere", "cone"]
LABEL_FIELDS = ("label", "labels", "class", "semantic", "scalar_label")


@dataclass
class Cloud:
    """One point cloud: ``xyz`` (M, 3) float32, optional per-point ``labels`` (M,) int, a cloud
    ``category`` (int or None), optional ``normals`` (M, 3) and its ``name``."""

    name: str
    xyz: np.ndarray
    labels: np.ndarray | None = None
    category: int | None = None
    normals: np.ndarray | None = None
    segments: object | None = field(default=None, repr=False)


@dataclass
class CloudSet:
    clouds: list[Cloud]
    source: str
    classes: list[str] | None = None
    categories: list[str] | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- readers


def _check_xyz(xyz: np.ndarray, path: Path) -> np.ndarray:
    if xyz.ndim != 2 or xyz.shape[1] < 3:
        raise InputFileError(f"expected an N x 3 array of x, y, z, got shape {xyz.shape}",
                             path=path, fix="save the coordinates as N rows of x, y, z")
    xyz = np.asarray(xyz[:, :3], dtype=np.float64)
    if xyz.shape[0] == 0:
        raise InputFileError("the cloud has no points", path=path, fix="remove the empty file")
    bad = ~np.isfinite(xyz).all(1)
    if bad.any():
        raise InputFileError(f"{int(bad.sum())} point(s) have NaN or infinite coordinates",
                             path=path, fix="drop those points before training")
    return xyz.astype(np.float32)


def _read_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    from plyfile import PlyData

    try:
        ply = PlyData.read(str(path))
        vertex = ply["vertex"]
    except Exception as exc:  # noqa: BLE001 - any parse failure is the file's problem
        raise InputFileError(f"not a readable PLY with a vertex element ({exc})", path=path,
                             fix="export the cloud as PLY with x, y, z vertex properties"
                             ) from exc
    names = set(vertex.data.dtype.names or ())
    if not {"x", "y", "z"} <= names:
        raise InputFileError(f"the PLY vertex element has no x/y/z (it has {sorted(names)})",
                             path=path, fix="export the cloud with x, y, z vertex properties")
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1)
    labels = next((np.asarray(vertex[f]) for f in LABEL_FIELDS if f in names), None)
    return xyz, labels


def _read_las(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    import laspy

    try:
        las = laspy.read(str(path))
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"not a readable LAS/LAZ file ({exc})", path=path,
                             fix="check the file (LAZ needs the lazrs package)") from exc
    xyz = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], 1)
    labels = np.asarray(las.classification) if len(las.points) else None
    return xyz, labels


def _read_np(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as z:
            key = next((k for k in ("xyz", "points", "coords") if k in z.files),
                       z.files[0] if z.files else None)
            if key is None:
                raise InputFileError("the NPZ holds no arrays", path=path,
                                     fix="save the points as xyz=array(N, 3)")
            labels = z["labels"] if "labels" in z.files else None
            return z[key], labels
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"not a readable NumPy file ({exc})", path=path,
                             fix="save the points with numpy.save / numpy.savez") from exc


def read_cloud(path: str | Path, labels_dir: str | Path | None = None) -> Cloud:
    """Read one cloud; labels from the file, ``labels_dir/<stem>.npy`` or a sibling
    ``<stem>.labels.npy``; a label count differing from the point count is an error."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError("no such file", path=path, fix="give an existing cloud file")
    suffix = path.suffix.lower()
    if suffix == ".ply":
        xyz, labels = _read_ply(path)
    elif suffix in (".las", ".laz"):
        xyz, labels = _read_las(path)
    elif suffix in (".npy", ".npz"):
        xyz, labels = _read_np(path)
    else:
        raise InputFileError(f"unsupported suffix {suffix!r}", path=path,
                             fix=f"give one of {', '.join(SUFFIXES)}")
    xyz = _check_xyz(np.asarray(xyz), path)
    lab_path = None
    if labels_dir is not None:
        lab_path = Path(labels_dir) / f"{path.stem}.npy"
        if not lab_path.is_file():
            raise InputFileError(f"no labels for {path.name}", path=lab_path,
                                 fix="write one <stem>.npy of per-point labels per cloud")
    elif (path.parent / f"{path.stem}.labels.npy").is_file():
        lab_path = path.parent / f"{path.stem}.labels.npy"
    if lab_path is not None:
        try:
            labels = np.load(lab_path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise InputFileError(f"not a readable .npy ({exc})", path=lab_path,
                                 fix="save labels with numpy.save") from exc
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != xyz.shape[0]:
            raise InputFileError(f"{labels.shape[0]} labels for {xyz.shape[0]} points",
                                 path=lab_path or path,
                                 fix="give exactly one label per point, in point order")
        labels = labels.astype(np.int64)
    return Cloud(path.stem, xyz, labels)


def list_clouds(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES
                   and not p.name.endswith(".labels.npy") and p.is_file())
    return files


def load_clouds(data: str | Path, labels_dir: str | Path | None = None, *,
                n_scenes: int = 32, seed: int = 0) -> CloudSet:
    """``"scenes"`` (generated) or a file / folder of clouds (subfolders as cloud classes)."""
    if str(data) == "scenes":
        return make_scenes(n_scenes, seed=seed)
    root = Path(data)
    if root.is_file():
        files, base = [root], root.parent
    elif root.is_dir():
        files, base = list_clouds(root), root
        if labels_dir is not None:
            files = [f for f in files if Path(labels_dir).resolve() not in f.resolve().parents]
    else:
        raise InputFileError("no such file or folder", path=root,
                             fix="give --data scenes, a cloud file or a folder of clouds")
    if not files:
        raise InputFileError("the folder holds no point clouds", path=root,
                             fix=f"put {', '.join(SUFFIXES)} files in it")
    clouds = [read_cloud(f, labels_dir) for f in files]
    cats = [f.parent.relative_to(base).parts[0] if f.parent != base else None for f in files]
    categories = None
    if all(c is not None for c in cats) and len(set(cats)) > 1:
        categories = sorted(set(cats))
        for c, name in zip(clouds, cats, strict=True):
            c.category = categories.index(name)
    if labels_dir is not None and any(c.labels is None for c in clouds):
        raise InputFileError("some clouds have no labels", path=root, fix="label every cloud")
    classes = None
    if all(c.labels is not None for c in clouds):
        n = int(max(int(c.labels.max()) for c in clouds)) + 1  # type: ignore[union-attr]
        classes = [str(i) for i in range(n)]
    return CloudSet(clouds, str(root), classes, categories)


# ---------------------------------------------------------------- scenes


def _primitive(shape: str, size: float, rng: np.random.Generator):
    import trimesh

    if shape == "box":
        ext = size * rng.uniform(0.6, 1.0, 3)
        mesh = trimesh.creation.box(extents=ext)
    elif shape == "cylinder":
        mesh = trimesh.creation.cylinder(radius=size * 0.4, height=size * 1.2, sections=24)
    elif shape == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=2, radius=size * 0.5)
    else:
        mesh = trimesh.creation.cone(radius=size * 0.5, height=size * 1.2, sections=24)
    mesh.apply_translation([0, 0, -mesh.bounds[0, 2]])  # rest on the floor
    return mesh


def _plane(origin, u, v, n_pts, normal, rng):
    a, b = rng.uniform(0, 1, (2, n_pts))
    pts = origin + a[:, None] * u + b[:, None] * v
    return pts, np.tile(normal, (n_pts, 1))


def make_scene(seed: int, *, room: float = 4.0, height: float = 2.0,
               density: float = 220.0) -> Cloud:
    """One room: floor, two walls and 3-6 primitives, sampled at ``density`` points / m^2."""
    import trimesh

    rng = np.random.default_rng(seed)
    kind = int(rng.integers(len(SHAPES)))
    parts, normals, labels = [], [], []
    for origin, u, v, nrm, lab in (
            ((0, 0, 0), (room, 0, 0), (0, room, 0), (0, 0, 1), 0),
            ((0, 0, 0), (room, 0, 0), (0, 0, height), (0, 1, 0), 1),
            ((0, 0, 0), (0, room, 0), (0, 0, height), (1, 0, 0), 1)):
        area = np.linalg.norm(np.cross(u, v))
        p, q = _plane(np.array(origin, float), np.array(u, float), np.array(v, float),
                      int(area * density), np.array(nrm, float), rng)
        parts.append(p)
        normals.append(q)
        labels.append(np.full(len(p), lab))
    n_obj = int(rng.integers(3, 7))
    cells = rng.permutation(9)[:n_obj]
    for cell in cells:
        shape = SHAPES[kind] if rng.uniform() < 0.6 else SHAPES[int(rng.integers(4))]
        size = rng.uniform(0.45, 0.8)
        mesh = _primitive(shape, size, rng)
        cx, cy = (cell % 3 + 0.5) * room / 3.3 + 0.35, (cell // 3 + 0.5) * room / 3.3 + 0.35
        mesh.apply_translation([cx, cy, 0.0])
        n_pts = max(64, int(mesh.area * density * 2))
        pts, faces = trimesh.sample.sample_surface(mesh, n_pts, seed=int(rng.integers(2**31)))
        keep = pts[:, 2] > 0.01  # the bottom face touches the floor: not scanned
        parts.append(pts[keep])
        normals.append(mesh.face_normals[faces][keep])
        labels.append(np.full(int(keep.sum()), 2 + SHAPES.index(shape)))
    return Cloud(f"scene{seed:04d}", np.concatenate(parts).astype(np.float32),
                 np.concatenate(labels).astype(np.int64), kind,
                 np.concatenate(normals).astype(np.float32))


def make_scenes(n: int, seed: int = 0) -> CloudSet:
    """``n`` rooms (scene ``i`` drawn from seed ``1000 * seed + i``)."""
    clouds = [make_scene(1000 * seed + i) for i in range(n)]
    return CloudSet(clouds, "scenes", list(SCENE_CLASSES), list(SHAPES),
                    ["scenes: generated rooms (floor, two walls, 3-6 trimesh primitives)"])


# ---------------------------------------------------------------- views


def scan_view(cloud: Cloud, n_points: int, rng: np.random.Generator, *, noise: float = 0.01
              ) -> tuple[np.ndarray, np.ndarray]:
    """One view: ``(xyz (n_points, 3) float32, index into the cloud (n_points,))``.

    With normals (scenes): a scan from a random viewpoint, back-facing points occluded and
    points beyond a random range dropped. Without: a random cuboid crop of half to all of the
    cloud's extent. Then resampling to ``n_points``, jitter, a random rotation about z and
    centring."""
    xyz = cloud.xyz.astype(np.float64)
    lo, hi = xyz.min(0), xyz.max(0)
    keep = np.zeros(0, dtype=np.int64)
    for _ in range(10):
        if cloud.normals is not None:
            eye = lo + rng.uniform(0.2, 0.8, 3) * (hi - lo)
            eye[2] = lo[2] + 0.75 * (hi[2] - lo[2])
            to_eye = eye - xyz
            dist = np.linalg.norm(to_eye, axis=1)
            vis = (np.einsum("ij,ij->i", to_eye, cloud.normals) > 0)
            vis &= dist < rng.uniform(0.6, 0.9) * np.linalg.norm(hi - lo)
        else:
            span = (hi - lo) * rng.uniform(0.5, 1.0, 3)
            start = lo + rng.uniform(0, 1, 3) * (hi - lo - span)
            vis = ((xyz >= start) & (xyz <= start + span)).all(1)
        keep = np.flatnonzero(vis)
        if keep.size >= min(32, xyz.shape[0]):
            break
    if keep.size == 0:
        keep = np.arange(xyz.shape[0])
    idx = rng.choice(keep, n_points, replace=keep.size < n_points)
    pts = xyz[idx] + rng.normal(0, noise, (n_points, 3))
    a = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    pts = (pts - pts.mean(0)) @ rot.T
    return pts.astype(np.float32), idx


def correspondences(cloud: Cloud, idx1: np.ndarray, idx2: np.ndarray, n_pairs: int,
                    rng: np.random.Generator, radius: float = 0.05) -> np.ndarray:
    """``n_pairs`` true correspondences (row in view 1, row in view 2): points of the two views
    whose surface samples (before jitter and rotation) lie within ``radius`` of each other,
    nearest first; (n_pairs, 2). Falls back to the closest pairs if none is that close."""
    from scipy.spatial import cKDTree

    tree = cKDTree(cloud.xyz[idx1])
    dist, a = tree.query(cloud.xyz[idx2], k=1)
    b = np.flatnonzero(dist < radius)
    if b.size == 0:
        b = np.argsort(dist)[: max(1, n_pairs)]
    pick = rng.choice(b, n_pairs, replace=b.size < n_pairs)
    return np.stack([a[pick], pick], 1)


def normalise_cloud(xyz: np.ndarray) -> np.ndarray:
    """Centred (the probes' and embed's input frame; training views are centred too)."""
    return (xyz - xyz.mean(0)).astype(np.float32)


def sample_points(cloud: Cloud, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of ``n_points`` points of the cloud (without replacement when possible)."""
    m = cloud.xyz.shape[0]
    return rng.choice(m, n_points, replace=m < n_points)


def check_for_training(cs: CloudSet) -> None:
    if len(cs.clouds) < 2 and cs.source != "scenes":
        raise ConfigError(f"{cs.source} gives {len(cs.clouds)} cloud(s)",
                          fix="give a folder with at least two clouds")
