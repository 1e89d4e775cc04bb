"""``medcl core sr`` end to end: train (PCL-SR and L1), upscale PNG and NIfTI (affine), evaluate,
bad inputs."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers import oblique_lps_affine, write_nifti

TINY = ["--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4", "--patch", "16",
        "--blocks", "1", "--feats", "8", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _hr_folder(root, n=3, size=24):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        px = rng.uniform(0, 255, (size, size, 3))
        Image.fromarray(px.astype(np.uint8)).save(root / f"im{i}.png")
    return root


def test_train_upscale_evaluate(tmp_path, core_cli):
    data = _hr_folder(tmp_path / "hr")
    run = tmp_path / "run"
    code, out, err = core_cli(["sr", "train", "--data", data, "--scale", "2", "--out", run,
                               *TINY])
    assert code == 0, err
    log = pd.read_csv(run / "metrics.csv")
    assert {"l1", "contrast", "disc"} <= set(log.columns)
    png = tmp_path / "up.png"
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "small.png")
    code, out, err = core_cli(["sr", "upscale", "--model", run, "--image",
                               tmp_path / "small.png", "--out", png])
    assert code == 0, err
    assert np.asarray(Image.open(png)).shape == (10, 14)
    ev = tmp_path / "ev"
    code, out, err = core_cli(["sr", "evaluate", "--model", run, "--data", data, "--out", ev])
    assert code == 0, err
    scores = pd.read_csv(ev / "scores.csv")
    assert np.isfinite(scores["psnr"][0]) and 0 < scores["ssim"][0] <= 1


def test_nifti_upscale_keeps_world_extent(tmp_path, core_cli):
    data = _hr_folder(tmp_path / "hr")
    run = tmp_path / "run"
    assert core_cli(["sr", "train", "--data", data, "--contrast", "off", "--out", run,
                     *TINY])[0] == 0
    aff = oblique_lps_affine((0.8, 0.9, 2.5))
    vol = np.random.default_rng(0).uniform(0, 100, (6, 5, 4)).astype(np.float32)
    src = write_nifti(tmp_path / "thick.nii.gz", vol, aff)
    dst = tmp_path / "up.nii.gz"
    code, out, err = core_cli(["sr", "upscale", "--model", run, "--image", src, "--out", dst])
    assert code == 0, err
    img = nib.load(dst)
    assert img.shape == (12, 10, 4)  # the thick axis (2.5 mm) is kept
    np.testing.assert_allclose(img.header.get_zooms(), (0.4, 0.45, 2.5), atol=1e-5)
    # the world position of the volume's corner (voxel -0.5) is unchanged
    corner_old = aff @ np.array([-0.5, -0.5, -0.5, 1])
    corner_new = img.affine @ np.array([-0.5, -0.5, -0.5, 1])
    np.testing.assert_allclose(corner_new, corner_old, atol=1e-6)
    far_old = aff @ np.array([5.5, 4.5, 3.5, 1])
    far_new = img.affine @ np.array([11.5, 9.5, 3.5, 1])
    np.testing.assert_allclose(far_new, far_old, atol=1e-6)
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1


def test_bad_inputs(tmp_path, core_cli):
    data = _hr_folder(tmp_path / "hr")
    code, out, err = core_cli(["sr", "train", "--data", data, "--scale", "5", "--out",
                               tmp_path / "r", *TINY])
    assert code == 2 and "--scale 5 is not supported" in err and not (tmp_path / "r").exists()
    code, out, err = core_cli(["sr", "train", "--data", data, "--scale", "3", "--out",
                               tmp_path / "r", *TINY])  # patch 16 is not a multiple of 3
    assert code == 2 and "--patch 16 cannot be downscaled by 3" in err
    tiny = _hr_folder(tmp_path / "tiny", n=1, size=6)
    run = tmp_path / "run"
    assert core_cli(["sr", "train", "--data", data, "--out", run, *TINY])[0] == 0
    code, out, err = core_cli(["sr", "evaluate", "--model", run, "--data", tiny, "--out",
                               tmp_path / "ev"])
    assert code == 2 and "too small for scale 2" in err and not (tmp_path / "ev").exists()
    code, out, err = core_cli(["sr", "upscale", "--model", tmp_path, "--image",
                               tiny / "im0.png", "--out", tmp_path / "x.png"])
    assert code == 2 and "config.yaml is missing" in err


def test_bad_image_sizes_and_weights(tmp_path, core_cli):
    data = _hr_folder(tmp_path / "hr")
    small = _hr_folder(tmp_path / "small", n=2, size=12)
    code, out, err = core_cli(["sr", "train", "--data", small, "--out", tmp_path / "r",
                               *TINY])  # 12 px images cannot give 16 px patches
    assert code == 2 and "smaller than --patch 16" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()
    run = tmp_path / "run"
    assert core_cli(["sr", "train", "--data", data, "--contrast", "off", "--out", run,
                     *TINY])[0] == 0
    torch.save(torch.nn.Linear(3, 2).state_dict(), run / "model.pt")  # another architecture
    png = tmp_path / "up.png"
    code, out, err = core_cli(["sr", "upscale", "--model", run, "--image", data / "im0.png",
                               "--out", png])
    assert code == 2 and "model.pt does not match" in err
    assert len(err.strip().splitlines()) == 1 and not png.exists()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_short_training_lowers_loss(seed):
    """PCL-SR's generator loss (L1 in grey levels + 5 x contrast, the discriminator trained
    alongside) on one fixed batch of four 16 px astronaut patches: 60 steps, last-5 mean vs
    the first step (measured: total and L1 at most 0.26 x)."""
    from medcl.contrastive.sr import Discriminator, edsr_baseline
    from medcl.core.sr_train import random_patches, skimage_images, sr_step, to_tensor

    images = [to_tensor(im) for im in skimage_images(("astronaut",))]
    hr = random_patches(images, 4, 16, torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    net, disc = edsr_baseline(2, 3, 1, 8), Discriminator(3, 4)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-3)
    history = [sr_step(net, opt, hr, 2, disc, opt_d, 5.0) for _ in range(60)]
    assert set(history[0]) == {"l1", "contrast", "disc", "loss"}
    for key in ("loss", "l1"):
        first, last = float(history[0][key]), sum(float(h[key]) for h in history[-5:]) / 5
        assert last < 0.5 * first, (key, first, last)
    # the contrast term stays finite and at most its start (log 3 for equal similarities)
    assert all(np.isfinite(float(h["contrast"])) for h in history)
    assert sum(float(h["contrast"]) for h in history[-5:]) / 5 <= 1.01 * float(
        history[0]["contrast"])
