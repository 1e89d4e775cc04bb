"""Training recipes of the SepCLR harness (SepCLR, pooled SimCLR, contrastive VAE) on the core
engine, and loading a trained run back."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .config import SepCLRConfig


class TwoViews(Dataset):
    """Two augmented views of each image and its group (per-sample torchvision transforms:
    random resized crop and horizontal flip, as the authors' CIFAR/CelebA pipelines)."""

    def __init__(self, images: Tensor, is_target: Tensor, crop_scale: float) -> None:
        from torchvision.transforms import v2

        self.images, self.is_target = images, is_target
        size = images.shape[-1]
        self.augment = v2.Compose([
            v2.RandomResizedCrop(size, scale=(crop_scale, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
        ])

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


def build_model(cfg: SepCLRConfig, in_channels: int, image_size: int) -> nn.Module:
    """The network of ``cfg.method`` for images of ``in_channels`` x ``image_size``^2."""
    if cfg.method == "cvae":
        from .cvae import ContrastiveVAE

        return ContrastiveVAE(in_channels, image_size, cfg.common_dim, cfg.salient_dim,
                              width=cfg.widths[0] * 2, beta=cfg.cvae_beta)
    from .model import PooledSimCLRNet, SepCLRNet

    cls = SepCLRNet if cfg.method == "sepclr" else PooledSimCLRNet
    return cls(in_channels, cfg.widths, cfg.common_dim, cfg.salient_dim)


def _step_fn(cfg: SepCLRConfig):
    """``step(model, batch)`` for the engine, calling the wrapped model's forward once."""
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
            c, s = model(torch.cat([v1, v2]))
            n = len(v1)
            return loss_fn(c[:n], c[n:], s[:n], s[n:], is_target)

        return step
    from medcl.contrastive.losses import NTXentLoss

    ntxent = NTXentLoss(cfg.simclr_temperature)

    def step(model, batch):
        v1, v2, _ = batch
        z = model(torch.cat([v1, v2]))
        return ntxent(z[: len(v1)], z[len(v1):])

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
        dataset = TwoViews(images, is_target, cfg.crop_scale)
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
    model = build_model(cfg, cfg.channels, cfg.image_size)
    model.load_state_dict(folder.load_model())
    return cfg, model.eval()
