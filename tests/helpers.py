"""What several test files need: a free loopback port, an oblique LPS affine, NIfTI writers.

Importable from any test as ``from helpers import ...`` (``pythonpath = ["tests"]`` in
pyproject's pytest section).
"""

from __future__ import annotations

import math
import socket
from pathlib import Path

import numpy as np


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a two-process gloo group)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def oblique_lps_affine(spacing: tuple[float, float, float] = (0.8, 0.9, 2.5)) -> np.ndarray:
    """A voxel-to-world affine far from RAS: axes permuted (y-, z-, x+), flipped, rotated 15
    degrees about z, anisotropic ``spacing`` (mm) and an off-centre origin."""
    a = math.radians(15)
    rot = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0],
                    [0.0, 0.0, 1.0]])
    perm = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ perm @ np.diag(spacing)
    aff[:3, 3] = [30.0, -12.0, 7.0]
    return aff


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None, *,
                qform_code: int = 1, sform_code: int = 1) -> Path:
    """Save ``data`` with nibabel as a scanner would: the same ``affine`` in qform and sform,
    with the given codes (identity affine when none is given)."""
    import nibabel as nib

    img = nib.Nifti1Image(data, np.eye(4) if affine is None else affine)
    img.set_qform(img.affine, code=qform_code)
    img.set_sform(img.affine, code=sform_code)
    nib.save(img, path)
    return Path(path)


def assert_same_geometry(written, source, atol: float = 1e-6) -> None:
    """``written`` (a nibabel image) has ``source``'s shape, affine, voxel sizes, and qform and
    sform (each with its code): what every geometry-keeping writer promises."""
    assert written.shape == source.shape
    np.testing.assert_allclose(written.affine, source.affine, atol=atol)
    np.testing.assert_allclose(written.header.get_zooms(), source.header.get_zooms(), atol=atol)
    for form in ("qform", "sform"):
        got, got_code = getattr(written.header, f"get_{form}")(coded=True)
        want, want_code = getattr(source.header, f"get_{form}")(coded=True)
        assert int(got_code) == int(want_code), form
        if want_code:
            np.testing.assert_allclose(got, want, atol=atol)
