"""Fixtures of the ``medcl dbsam`` tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def lite_ckpt(tmp_path_factory):
    """A LiteMedSAM checkpoint of random weights (seed 0) written as a state-dict file."""
    from medcl.dbsam.litemedsam import build_litemedsam

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "lite_medsam.pth"
    torch.save(build_litemedsam().state_dict(), path)
    return path
