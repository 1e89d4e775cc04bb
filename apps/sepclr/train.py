"""Training recipes of the SepCLR harness (SepCLR, pooled SimCLR, contrastive VAE) on the core
engine, and loading a trained run back."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .config import SepCLRConfig


def build_augment(cfg: SepCLRConfig, image_size: int):
    """The authors' augmentation pipeline (their ``*/data_augmentation.py``), per image.

    Random resized crop of scale ``(cfg.crop_scale, cfg.crop_scale_max)`` to ``cfg.crop_size``
    (default: ``image_size``), horizontal flip (``cfg.hflip``), vertical flip (``cfg.vflip``),
    colour jitter ``cfg.jitter`` applied with probability ``cfg.jitter_p``, grayscale with
    probability ``cfg.grayscale_p``, rotation up to ``cfg.rotation`` degrees. Defaults: SimCLR's
    (crop scale (0.2, 1), flip 0.5, jitter (0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale 0.2);
    per-dataset extras come from the data card (X-rays: rotation 45; ODIR: scale (0.75, 1),
    vertical instead of horizontal flip).

    Departures from the authors' code: their kornia pipeline runs on whole batches and wraps
    the jitter in torchvision's ``RandomApply``, which draws *one* coin per batch (every image
    of a batch is jittered, or none); here each image draws its own, as SimCLR describes.
    The order is fixed (crop, flips, colour, grayscale, rotation) where the authors' varies by
    dataset; flips and rotations of symmetric range commute in distribution with the colour
    operations, so the distribution of views is the same. Saturation and hue leave
    one-channel images unchanged (torchvision), as the authors' pipelines on grayscale input.
    """
    from torchvision.transforms import v2

    size = cfg.crop_size or image_size
    steps: list = [v2.RandomResizedCrop(size, scale=(cfg.crop_scale, cfg.crop_scale_max),
                                        antialias=True)]
    if cfg.hflip > 0:
        steps.append(v2.RandomHorizontalFlip(cfg.hflip))
    if cfg.vflip > 0:
        steps.append(v2.RandomVerticalFlip(cfg.vflip))
    if cfg.jitter_p > 0 and any(cfg.jitter):
        steps.append(v2.RandomApply([v2.ColorJitter(*cfg.jitter)], p=cfg.jitter_p))
    if cfg.grayscale_p > 0:
        steps.append(v2.RandomGrayscale(cfg.grayscale_p))
    if cfg.rotation > 0:
        steps.append(v2.RandomRotation(cfg.rotation))
    return v2.Compose(steps)


class TwoViews(Dataset):
    """Two augmented views of each image and its group (:func:`build_augment`)."""

    def __init__(self, images: Tensor, is_target: Tensor, augment) -> None:
        self.images, self.is_target, self.augment = images, is_target, augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.images[i]
        return self.augment(x), self.augment(x), self.is_target[i]


class Plain(Dataset):
    def __init__(self, images: Tensor, is_target: Tensor) -> None:
        self.images, self.is_target = images, is_target

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], self.is_target[i]


def build_model(cfg: SepCLRConfig, in_channels: int, image_size: int, *,
                pretrained: bool = True) -> nn.Module:
    """The network of ``cfg.method`` for images of ``in_channels`` x ``image_size``^2.

    ``pretrained``: initialise from ``cfg.pretrained`` when set (``False`` when a trained run's
    weights are loaded next, see :func:`load_run`)."""
    if cfg.method == "cvae":
        from .cvae import ContrastiveVAE

        return ContrastiveVAE(in_channels, image_size, cfg.common_dim, cfg.salient_dim,
                              width=cfg.widths[0] * 2, beta=cfg.cvae_beta)
    from .model import PooledSimCLRNet, SepCLRNet, read_resnet18_weights

    weights = (read_resnet18_weights(cfg.pretrained)
               if pretrained and cfg.pretrained is not None else None)
    cls = SepCLRNet if cfg.method == "sepclr" else PooledSimCLRNet
    return cls(in_channels, cfg.widths, cfg.common_dim, cfg.salient_dim, encoder=cfg.encoder,
               image_size=image_size, projector_hidden=cfg.projector_hidden, weights=weights)


def _two_passes(model, v1: Tensor, v2: Tensor, separate: bool):
    """The model's outputs on each view: one forward pass per view (``separate``, the authors':
    batch norm normalises each view's batch alone) or one pass on both views stacked."""
    if separate:
        return model(v1), model(v2)
    out = model(torch.cat([v1, v2]))
    n = len(v1)
    if isinstance(out, tuple):
        return tuple(o[:n] for o in out), tuple(o[n:] for o in out)
    return out[:n], out[n:]


def _step_fn(cfg: SepCLRConfig):
    """``step(model, batch)`` for the engine: the loss of one batch of two views."""
    separate = cfg.views == "separate"
    if cfg.method == "cvae":
        def step(model, batch):
            x, is_target = batch
            return model(x, is_target)

        return step
    if cfg.method == "sepclr":
        from medcl.contrastive.losses import SepCLRLoss

        loss_fn = SepCLRLoss(cfg.tau, cfg.common_weight, cfg.salient_weight,
                             cfg.regulariser_weight, cfg.mi_weight)

        def step(model, batch):
            v1, v2, is_target = batch
            (c1, s1), (c2, s2) = _two_passes(model, v1, v2, separate)
            return loss_fn(c1, c2, s1, s2, is_target)

        return step
    from medcl.contrastive.losses import NTXentLoss

    ntxent = NTXentLoss(cfg.simclr_temperature)

    def step(model, batch):
        v1, v2, _ = batch
        z1, z2 = _two_passes(model, v1, v2, separate)
        return ntxent(z1, z2)

    return step


def train(cfg: SepCLRConfig, images: Tensor, is_target: Tensor, run_dir: Path | None, *,
          progress: bool = True, resume: bool = False,
          accelerator: str = "auto") -> tuple[nn.Module, list[dict]]:
    """Train ``cfg.method`` on ``images`` (N, C, H, W) in [0, 1] with groups ``is_target`` (N,).

    Writes ``metrics.csv`` and ``checkpoints/last.pt`` into ``run_dir`` through the engine and
    returns the trained model (CPU, eval mode) and the engine's epoch rows.
    """
    from medcl.contrastive.engine import Engine, EngineConfig

    if int(is_target.sum()) == 0 or int((~is_target).sum()) == 0:
        raise ValueError("contrastive analysis needs both background and target images")
    engine = Engine(EngineConfig(max_epochs=cfg.epochs, seed=cfg.seed, resume=resume,
                                 progress=progress, accelerator=accelerator), run_dir)
    model = build_model(cfg, images.shape[1], images.shape[-1])
    if cfg.method == "cvae":
        dataset: Dataset = Plain(images, is_target)
    else:
        dataset = TwoViews(images, is_target, build_augment(cfg, images.shape[-1]))
    batch = min(cfg.batch_size, len(dataset))
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=len(dataset) > batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model = engine.fit(model, optimizer, loader, _step_fn(cfg))
    return model.cpu().eval(), engine.history


def load_run(run_dir: str | Path) -> tuple[SepCLRConfig, nn.Module]:
    """Rebuild the trained model of a ``medcl sepclr fit`` run folder (weights_only loading)."""
    from medcl.io import ConfigError, RunFolder

    folder = RunFolder(Path(run_dir))
    raw = folder.read_config()
    known = {f.name for f in fields(SepCLRConfig)}
    cfg_dict = {k: v for k, v in (raw.get("config") or {}).items() if k in known}
    if not cfg_dict or cfg_dict.get("image_size") is None or cfg_dict.get("channels") is None:
        raise ConfigError("config.yaml is not a SepCLR run's (no resolved image_size/channels)",
                          path=folder.config_path, fix="pass the folder written by "
                          "`medcl sepclr fit --out RUN`")
    cfg = SepCLRConfig(**cfg_dict)
    model = build_model(cfg, cfg.channels, cfg.image_size, pretrained=False)
    try:
        model.load_state_dict(folder.load_model())
    except RuntimeError as err:  # another architecture (e.g. a run of an older medcl)
        raise ConfigError(f"model.pt does not fit the network of config.yaml ({cfg.method}, "
                          f"encoder {cfg.encoder}): {str(err).splitlines()[0]}",
                          path=folder.root / "model.pt",
                          fix="retrain with `medcl sepclr fit` (runs written before the "
                          "encoder had a code layer and the authors' projector cannot be "
                          "loaded)") from err
    return cfg, model.eval()
