"""``medcl core sr``: PCL-SR vs L1-only super-resolution — data, training, metrics, upscaling.

Data: ``skimage`` = HR crops of scikit-image's shipped photographs (training, colour: astronaut,
coffee, rocket, immunohistochemistry, hubble_deep_field; held out: chelsea in colour, camera,
coins and brick in grey repeated to RGB — textured centre crops, where retina's smooth centre
scored 54 dB even for bicubic upsampling),
or a folder of PNG/JPG HR images (cards ``div2k``, ``set5``, ``set14``, ``bsd100``,
``urban100``). LR images are the bicubic (antialiased) downscale of HR, the usual degradation.

Loss: ``L1 + lambda x contrast`` with ``lambda = 5`` (the research note's ``1 L1 + 5 CL``).
As in the authors' EDSR code (``rgb_range = 255``) the L1 term is measured in 8-bit grey
levels, so the ratio of the two terms is the paper's; ``--contrast off`` keeps only L1 (the
baseline: same network, same steps). Scores: PSNR and SSIM (``skimage.metrics``) on the Y
channel of ITU-R BT.601 (``16 + 65.481 R + 128.553 G + 24.966 B``), with ``scale`` pixels cropped
from each border, as the EDSR / PCL-SR evaluation scripts.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from medcl.io.errors import ConfigError, InputFileError

TRAIN_IMAGES = ("astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
TEST_IMAGES = ("chelsea", "camera", "coins", "brick")
SCALES = (2, 3, 4)
LAMBDA = 5.0


@dataclass
class SRConfig:
    """One ``medcl core sr train`` run.

    Parameters
    ----------
    data : str
        ``skimage`` or a folder of HR PNG/JPG images.
    scale : {2, 3, 4}
    backbone : {"edsr-baseline"}
    contrast : bool
        PCL-SR's contrastive term on (``L1 + lambda CL``) or off (L1 only).
    epochs, steps_per_epoch, batch_size, patch, lr
        Training (patch = HR crop side; Adam as EDSR, lr 1e-4 in the paper, higher here for
        short CPU runs).
    n_resblocks, n_feats : int
        EDSR-baseline is 16 x 64; smaller for CPU runs.
    lam : float
        ``lambda`` (5).
    disc_width : int
        Width of the contrastive discriminator.
    seed : int
    """

    data: str = "skimage"
    scale: int = 2
    backbone: str = "edsr-baseline"
    contrast: bool = True
    epochs: int = 20
    steps_per_epoch: int = 20
    batch_size: int = 16
    patch: int = 48
    lr: float = 5e-4
    n_resblocks: int = 16
    n_feats: int = 64
    lam: float = LAMBDA
    disc_width: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ConfigError(f"--scale {self.scale} is not supported",
                              fix=f"give one of {', '.join(map(str, SCALES))}")
        if self.backbone != "edsr-baseline":
            raise ConfigError(f"--backbone {self.backbone!r} is unknown",
                              fix="give --backbone edsr-baseline")
        if self.patch % self.scale or self.patch < 4 * self.scale:
            raise ConfigError(f"--patch {self.patch} cannot be downscaled by {self.scale}",
                              fix=f"give a multiple of {self.scale} >= {4 * self.scale}")
        for flag, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size),
                            ("--steps-per-epoch", self.steps_per_epoch)):
            if value < 1:
                raise ConfigError(f"{flag} {value} is too small", fix=f"give {flag} >= 1")


# -- data ---------------------------------------------------------------------------------------
def skimage_images(names: tuple[str, ...]) -> list[np.ndarray]:
    """Shipped scikit-image photographs as ``(H, W, 3)`` float32 in [0, 1] (grey ones repeated
    to RGB)."""
    import skimage.data

    out = []
    for n in names:
        im = np.asarray(getattr(skimage.data, n)(), dtype=np.float32) / 255.0
        out.append(np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im[..., :3])
    return out


def folder_images(folder: str | Path) -> list[np.ndarray]:
    from medcl.io.images import read_image

    from .data import list_images

    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError("is not a folder", path=folder,
                             fix="give --data skimage or a folder of HR PNG/JPG images")
    files = list_images(folder)
    if not files:
        raise InputFileError("holds no PNG/JPG image", path=folder,
                             fix="put HR .png/.jpg images in the folder")
    images = [read_image(f)[0] for f in files]
    return [np.repeat(im, 3, axis=2) if im.shape[2] == 1 else im for im in images]


def load_hr(spec: str, train: bool) -> tuple[list[np.ndarray], str]:
    if spec == "skimage":
        names = TRAIN_IMAGES if train else TEST_IMAGES
        return skimage_images(names), f"scikit-image ({', '.join(names)})"
    return folder_images(spec), f"folder {spec}"


def to_tensor(im: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float()


def downscale(hr: Tensor, scale: int) -> Tensor:
    """Bicubic antialiased downscale of ``(N, C, H, W)`` (H, W multiples of ``scale``)."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True,
                         align_corners=False).clamp(0, 1)


def random_patches(images: list[Tensor], n: int, patch: int, gen: torch.Generator) -> Tensor:
    """``n`` random HR crops with random flips / 90-degree rotations (EDSR's augmentation)."""
    out = []
    for _ in range(n):
        im = images[int(torch.randint(len(images), (1,), generator=gen))]
        i = int(torch.randint(im.shape[1] - patch + 1, (1,), generator=gen))
        j = int(torch.randint(im.shape[2] - patch + 1, (1,), generator=gen))
        p = im[:, i:i + patch, j:j + patch]
        if torch.rand(1, generator=gen) < 0.5:
            p = p.flip(2)
        p = torch.rot90(p, int(torch.randint(4, (1,), generator=gen)), dims=(1, 2))
        out.append(p)
    return torch.stack(out)


def test_crops(images: list[np.ndarray], scale: int, size: int = 192) -> list[Tensor]:
    """Centre crops (``size`` rounded down to a multiple of ``scale``) of the held-out images."""
    out = []
    for im in images:
        h, w = im.shape[:2]
        s = min(size, h, w) // scale * scale
        if s < 4 * scale:
            raise ConfigError(f"an evaluation image of {h}x{w} pixels is too small for "
                              f"--scale {scale}", fix=f"use images of at least {4 * scale} "
                              "pixels a side, or a smaller --scale")
        i, j = (h - s) // 2, (w - s) // 2
        out.append(to_tensor(im[i:i + s, j:j + s]))
    return out


# -- metrics --------------------------------------------------------------------------------------
def y_channel(x: Tensor) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] -> Y (BT.601, [16, 235]) in grey levels; a grey image x 255."""
    a = x.detach().double().numpy()
    if a.shape[0] == 1:
        return a[0] * 255.0
    return 16.0 + 65.481 * a[0] + 128.553 * a[1] + 24.966 * a[2]


def psnr_ssim(sr: Tensor, hr: Tensor, scale: int) -> tuple[float, float]:
    """PSNR (dB) and SSIM on Y with ``scale`` border pixels cropped (``skimage.metrics``)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = y_channel(sr.clamp(0, 1))[scale:-scale, scale:-scale]
    b = y_channel(hr)[scale:-scale, scale:-scale]
    psnr = peak_signal_noise_ratio(b, a, data_range=255.0)
    ssim = structural_similarity(b, a, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)
    return float(psnr), float(ssim)


def quantise(x: Tensor) -> Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


@torch.no_grad()
def score(net: torch.nn.Module, crops: list[Tensor], scale: int) -> dict[str, float]:
    """Mean PSNR / SSIM of the network and of bicubic upsampling over ``crops``."""
    net.eval()
    rows = []
    for hr in crops:
        lr = quantise(downscale(hr[None], scale))
        sr = quantise(net(lr))[0]
        bic = quantise(F.interpolate(lr, size=hr.shape[-2:], mode="bicubic",
                                     align_corners=False))[0]
        rows.append((*psnr_ssim(sr, hr, scale), *psnr_ssim(bic, hr, scale)))
    m = np.mean(rows, axis=0)
    net.train()
    return {"psnr": m[0], "ssim": m[1], "bicubic_psnr": m[2], "bicubic_ssim": m[3]}


# -- training -------------------------------------------------------------------------------------
def build(cfg: SRConfig) -> torch.nn.Module:
    from medcl.contrastive.sr import edsr_baseline

    return edsr_baseline(cfg.scale, 3, cfg.n_resblocks, cfg.n_feats)


def sr_step(net: torch.nn.Module, opt: torch.optim.Optimizer, hr: Tensor, scale: int,
            disc: torch.nn.Module | None = None, opt_d: torch.optim.Optimizer | None = None,
            lam: float = LAMBDA) -> dict[str, Tensor]:
    """One training step on the HR batch ``hr`` ``(N, 3, H, W)``: the discriminator's
    contrastive update (when ``disc`` is given), then the generator's ``L1 + lam x contrast``
    (L1 only without ``disc``); returns the detached terms (``l1``, ``contrast``, ``disc``,
    ``loss``)."""
    from medcl.contrastive.sr import contrast_loss, discriminator_loss, negatives, positives

    lr = downscale(hr, scale)
    sr = net(lr)
    l1 = (sr - hr).abs().mean() * 255.0  # grey levels, as rgb_range = 255
    parts = {"l1": l1}
    loss = l1
    if disc is not None and opt_d is not None:
        d_loss = discriminator_loss(disc, hr, lr, sr)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.no_grad():
            fp = [disc(p) for p in positives(hr)]
            fn = [disc(n) for n in negatives(hr, lr)]
        cl = contrast_loss(disc(sr), fp, fn)
        loss = l1 + lam * cl
        parts.update(contrast=cl, disc=d_loss)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    parts["loss"] = loss
    return {k: v.detach() for k, v in parts.items()}


def training_images(cfg: SRConfig) -> tuple[list[Tensor], str]:
    """The HR training images of ``cfg.data`` as ``(3, H, W)`` tensors, checked against
    ``--patch`` (every image must hold one patch), and their description."""
    hr_np, source = load_hr(cfg.data, train=True)
    small = [im.shape[:2] for im in hr_np if min(im.shape[:2]) < cfg.patch]
    if small:
        raise ConfigError(f"{len(small)} training image(s) in {source} are smaller than "
                          f"--patch {cfg.patch} (e.g. {small[0][0]}x{small[0][1]})",
                          fix="give a smaller --patch or larger images")
    return [to_tensor(im) for im in hr_np], source


def train(cfg: SRConfig, progress: bool = True,
          data: tuple[list[Tensor], str] | None = None
          ) -> tuple[torch.nn.Module, list[dict[str, Any]], str]:
    """Train ``cfg``; ``data`` = :func:`training_images` when already loaded."""
    from medcl.contrastive.engine import seed_everything
    from medcl.contrastive.sr import Discriminator
    from medcl.util.clock import clock

    images, source = training_images(cfg) if data is None else data
    seed_everything(cfg.seed)
    net = build(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    disc = Discriminator(3, cfg.disc_width) if cfg.contrast else None
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr) if disc is not None else None
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        sums: dict[str, float] = {}
        for _ in range(cfg.steps_per_epoch):
            hr = random_patches(images, cfg.batch_size, cfg.patch, gen)
            parts = sr_step(net, opt, hr, cfg.scale, disc, opt_d, cfg.lam)
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        row = {"epoch": epoch + 1, **{k: v / cfg.steps_per_epoch for k, v in sums.items()},
               "seconds": round(time.perf_counter() - start, 3)}
        history.append(row)
        if progress:
            values = " ".join(f"{k}={v:.4g}" for k, v in row.items()
                              if k not in ("epoch", "seconds"))
            print(f"sr x{cfg.scale} {'pcl' if cfg.contrast else 'l1'} epoch {epoch + 1}/"
                  f"{cfg.epochs} {values} (elapsed {clock(time.perf_counter() - start)})",
                  file=sys.stderr, flush=True)
    net.eval()
    return net, history, source


def train_run(cfg: SRConfig, out: Path, progress: bool = True) -> Path:
    import pandas as pd

    from medcl.io import RunFolder

    crops_np, test_source = (load_hr("skimage", train=False) if cfg.data == "skimage"
                             else (None, None))
    data = training_images(cfg)  # every check before anything is written
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config(cfg, seed=cfg.seed, extra={"command": "medcl core sr train"})
    net, history, source = train(cfg, progress, data)
    folder.write_metrics(history)
    folder.save_model(net.state_dict())
    name = "PCL-SR (L1 + 5 x contrast)" if cfg.contrast else "L1 only"
    lines = [f"# EDSR-baseline x{cfg.scale}, {name}, on {source}", "",
             f"{cfg.n_resblocks} blocks x {cfg.n_feats} channels; {cfg.epochs} epochs x "
             f"{cfg.steps_per_epoch} steps of {cfg.batch_size} HR patches {cfg.patch}x"
             f"{cfg.patch} in {history[-1]['seconds']:.0f} s; seed {cfg.seed}.", ""]
    if crops_np is not None:
        s = score(net, test_crops(crops_np, cfg.scale), cfg.scale)
        table = folder.write_table("scores", pd.DataFrame([{"model": name, **s}]))
        lines += [f"Held-out {test_source}, centre crops, PSNR / SSIM on Y, border "
                  f"{cfg.scale}:", "", table]
    _plot(folder, history)
    lines += ["", "![training loss](loss.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


def _plot(folder: Any, history: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    for key in ("l1", "contrast"):
        if key in history[0]:
            ax.plot([r["epoch"] for r in history], [r[key] for r in history], label=key)
    ax.set_xlabel("epoch")
    ax.legend()
    fig.tight_layout()
    folder.save_figure("loss", fig)
    plt.close(fig)


def load_model(run: Path) -> tuple[SRConfig, torch.nn.Module]:
    from medcl.io import RunFolder
    from medcl.io.errors import RunFolderError

    folder = RunFolder(Path(run))
    record = folder.read_config()
    try:
        cfg = SRConfig(**record["config"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise RunFolderError("config.yaml was not written by `medcl core sr train`",
                             path=folder.config_path,
                             fix="point --model to an sr train run folder") from exc
    net = build(cfg)
    try:
        net.load_state_dict(folder.load_model())
    except RuntimeError as exc:
        raise RunFolderError("model.pt does not match the EDSR of config.yaml",
                             path=folder.model_path, fix="retrain into this folder") from exc
    net.eval()
    return cfg, net


# -- upscale / evaluate ---------------------------------------------------------------------------
@torch.no_grad()
def _upscale_grey(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """A grey 2-D array in [0, 1] through the RGB network (repeated, then averaged back)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None].repeat(1, 3, 1,
                                                                                        1)
    return net(t).clamp(0, 1).mean(1)[0].numpy()


def upscaled_affine(affine: np.ndarray, axes: tuple[int, int], scale: int) -> np.ndarray:
    """Voxel-to-world matrix after upscaling voxel ``axes`` by ``scale``: new index ``i'``
    covers old index ``(i' - (s - 1) / 2) / s``, so spacing is divided by ``s`` and the image's
    extent (voxel corners) is unchanged."""
    m = np.eye(4)
    for ax in axes:
        m[ax, ax] = 1.0 / scale
        m[ax, 3] = -(scale - 1) / (2.0 * scale)
    return np.asarray(affine, dtype=np.float64) @ m


def upscale_file(run: Path, image: Path, out: Path) -> str:
    """``medcl core sr upscale``: a PNG/JPG, or a NIfTI volume slice-wise in-plane."""
    from medcl.io.atomic import refuse_overwrite
    from medcl.io.nifti import NIFTI_SUFFIXES, strip_suffix

    cfg, net = load_model(run)
    image, out = Path(image), Path(out)
    refuse_overwrite(out, image)
    is_nifti = strip_suffix(image.name, NIFTI_SUFFIXES) is not None
    if is_nifti:
        return _upscale_nifti(net, cfg.scale, image, out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"output {out.name} must be a .png for an image input",
                          path=out, fix="name the output *.png")
    from medcl.io.images import read_image

    px, _ = read_image(image)
    grey = px.shape[2] == 1
    with torch.no_grad():
        t = to_tensor(np.repeat(px, 3, axis=2) if grey else px)[None]
        sr = net(t).clamp(0, 1)[0]
    arr = (sr.mean(0, keepdim=True) if grey else sr).permute(1, 2, 0).numpy()
    _save_png(out, arr)
    return f"{image} ({px.shape[0]}x{px.shape[1]}) -> {out} ({arr.shape[0]}x{arr.shape[1]})"


def _save_png(out: Path, arr: np.ndarray) -> None:
    from PIL import Image

    from medcl.io.atomic import atomic_path

    u8 = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    im = Image.fromarray(u8[..., 0] if u8.shape[2] == 1 else u8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        im.save(tmp, format="PNG")


def _upscale_nifti(net: torch.nn.Module, scale: int, image: Path, out: Path) -> str:
    from medcl.io.nifti import Volume, read_volume, strip_suffix, write_volume

    if strip_suffix(out.name) is None:
        raise ConfigError(f"output {out.name} must be NIfTI for a NIfTI input", path=out,
                          fix="name the output *.nii.gz")
    vol = read_volume(image)
    spacing = np.array(vol.spacing)
    thick = int(np.argmax(spacing)) if spacing.max() > 1.2 * spacing.min() else 2
    plane = tuple(a for a in range(3) if a != thick)
    lo, hi = np.percentile(vol.data, [0.5, 99.5])
    span = float(hi - lo) or 1.0
    moved = np.moveaxis(vol.data, thick, 0)
    if min(moved.shape[1:]) < 2:
        raise InputFileError(f"slices of {moved.shape[1]}x{moved.shape[2]} voxels are too "
                             "small to upscale", path=image, fix="give a 3-D volume")
    slices = [_upscale_grey(net, np.clip((s - lo) / span, 0, 1)) * span + lo for s in moved]
    data = np.moveaxis(np.stack(slices), 0, thick).astype(np.float32)
    affine = upscaled_affine(vol.affine, plane, scale)
    header = vol.header.copy()
    header.set_data_shape(data.shape)
    zooms = list(vol.header.get_zooms()[:3])
    for ax in plane:
        zooms[ax] = zooms[ax] / scale
    header.set_zooms(tuple(zooms))
    q_code, s_code = int(vol.header["qform_code"]), int(vol.header["sform_code"])
    header.set_qform(affine, code=q_code or 1)
    header.set_sform(affine, code=s_code or 1)
    like = Volume(data=data, affine=affine, header=header, path=vol.path)
    write_volume(out, data, like=like, dtype=np.float32)
    return (f"{image} {vol.shape} -> {out} {data.shape} (in-plane axes {plane} x{scale}, "
            f"spacing {tuple(round(z, 4) for z in zooms)})")


def evaluate_run(run: Path, data: str, out: Path) -> Path:
    """``medcl core sr evaluate``: PSNR / SSIM (Y, border crop) of every image of ``--data``
    (HR images; LR made by bicubic downscaling), next to bicubic upsampling."""
    import pandas as pd

    from medcl.io import RunFolder

    cfg, net = load_model(run)
    hr_np, source = load_hr(data, train=False)
    crops = [to_tensor(im[: im.shape[0] // cfg.scale * cfg.scale,
                          : im.shape[1] // cfg.scale * cfg.scale]) for im in hr_np]
    for im in hr_np:
        if min(im.shape[:2]) < 4 * cfg.scale:
            raise ConfigError(f"an image of {im.shape[0]}x{im.shape[1]} pixels in {source} is "
                              f"too small for scale {cfg.scale}",
                              fix=f"use images of at least {4 * cfg.scale} pixels a side")
    if data == "skimage":
        crops = test_crops(hr_np, cfg.scale)
    s = score(net, crops, cfg.scale)
    folder = RunFolder.create(out)
    folder.write_config({"model": str(run), "data": data}, seed=cfg.seed,
                        extra={"command": "medcl core sr evaluate"})
    table = folder.write_table("scores", pd.DataFrame([{
        "model": "PCL-SR" if cfg.contrast else "L1 only", "scale": cfg.scale,
        "images": len(crops), **s}]))
    folder.write_report("\n".join([f"# x{cfg.scale} super-resolution of {source}", "",
                                   f"PSNR / SSIM on Y (BT.601), border {cfg.scale} cropped; "
                                   "LR by bicubic downscaling.", "", table]))
    return folder.report_path
