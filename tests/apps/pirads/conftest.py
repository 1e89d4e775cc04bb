"""Fixtures the PI-RADS tests share."""

import nibabel as nib
import pytest


@pytest.fixture
def nifti_loads(monkeypatch):
    """Every path ``nibabel.load`` opens from now on, in order (to show a file is read once)."""
    loads: list[str] = []
    real_load = nib.load

    def counting_load(filename, *args, **kwargs):
        loads.append(str(filename))
        return real_load(filename, *args, **kwargs)

    monkeypatch.setattr(nib, "load", counting_load)
    return loads
