"""The probe runner on a random tiny SAM image encoder built in the test (the benchmark's
SAM-like encoder) and the encoder adapters."""

import numpy as np
import pandas as pd
import pytest
import torch

from medcl.core.hvs_encoders import sam_adapter, sam_image_encoder
from medcl.core.hvs_runner import HVSConfig, run_hvs

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_sam():
    torch.manual_seed(0)
    return sam_adapter(sam_image_encoder(embed_dim=32, depth=2, num_heads=2,
                                         global_attn_indexes=(1,), img_size=64))


def test_tiny_sam_features_and_run_folder(tmp_path):
    enc = tiny_sam()
    f = enc(torch.rand(2, 3, 224, 224))
    assert f.shape == (2, 256, 4, 4)  # resized to its 64 px input: 4 x 4 patches
    cfg = HVSConfig(encoder="sam-tiny (random)", conditions=3, ratios=3, steps=3,
                    tests=["detection_gabor", "masking_coherent", "matching"])
    report = run_hvs(cfg, tmp_path / "eval", encoder=enc, progress=False)
    assert "detection_gabor" in report and "masking_coherent" in report
    table = pd.read_csv(tmp_path / "eval" / "hvs.csv")
    assert np.all(np.abs(table["spearman"].dropna()) <= 1)
    assert (tmp_path / "eval" / "hvs_masking_coherent.png").stat().st_size > 1000
    curves = pd.read_csv(tmp_path / "eval" / "curves.csv")
    assert len(curves[curves.test == "matching"]) == 9  # 3 reference contrasts x 3 frequencies
    assert (tmp_path / "eval" / "hvs_matching.png").is_file()


def test_display_adapter_luma_and_normalisation():
    from medcl.contrastive.hvs.adapter import DisplayAdapter

    ad = DisplayAdapter(torch.nn.Identity(), channels=1, scale=2.0, mean=[1.0], std=[0.5])
    x = torch.rand(1, 3, 8, 8)
    luma = 0.2126 * x[:, 0] + 0.7152 * x[:, 1] + 0.0722 * x[:, 2]
    assert torch.allclose(ad(x)[:, 0], (2 * luma - 1.0) / 0.5, atol=1e-6)
    with pytest.raises(ValueError):
        ad(torch.rand(1, 1, 8, 8))
