"""Two-stage training of the dual-path network on the core engine (Das et al. 2023): stage 1
supervised (Dice + CE per branch weighted toward its zone group, fused output, gland mask and
signed distance); stage 2 co-training adding the branches' consistency on labelled and
unlabelled volumes. The single-path MONAI baseline is trained with the same budget."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from .config import PiradsConfig


def list_cases(images: Path, labels: Path | None = None) -> list[tuple[str, Path, Path | None]]:
    """(case, image, label) triples of an nnU-Net/MSD-style pair of folders of T2 volumes."""
    from medio.cases import list_cases as _list

    return _list(images, labels, what="T2 volume")


def load_cases(cfg: PiradsConfig, cases, *, with_labels: bool) -> tuple[Tensor, Tensor | None]:
    """Preprocessed images (N, 1, X, Y, Z) and labels (N, 1, X, Y, Z) of the cases."""
    from medio.nifti import read_labels, read_volume

    from .transforms import preprocess, preprocess_transforms

    transforms = preprocess_transforms(spacing=cfg.spacing, crop=cfg.crop,
                                       with_label=with_labels)
    images, labels = [], []
    for _, image, label in cases:
        vol = read_volume(image, channel=cfg.channel)  # clear errors: corrupt, 4-D, NaN
        if with_labels:
            read_labels(label, allowed={0, 1, 2, 3, 4}, like=vol)
        data = preprocess(image, label if with_labels else None, transforms=transforms)
        images.append(torch.as_tensor(data["image"]).float())
        if with_labels:
            labels.append(torch.as_tensor(data["label"]).long())
    return torch.stack(images), (torch.stack(labels) if with_labels else None)


def build_model(cfg: PiradsConfig, kind: str = "dual") -> nn.Module:
    from .model import DualPathNet, SinglePathNet

    if kind == "dual":
        return DualPathNet(1, 5, filters=cfg.filters, groups=tuple(map(tuple, cfg.groups)))
    return SinglePathNet(1, 5, filters=cfg.filters)


def _fit(cfg, model, dataset, step, epochs, run_dir, progress, seed):
    from contrastive.engine import Engine, EngineConfig

    engine = Engine(EngineConfig(max_epochs=epochs, seed=seed, progress=progress), run_dir)
    loader = DataLoader(dataset, batch_size=min(cfg.batch_size, len(dataset)), shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return engine.fit(model, optimizer, loader, step), engine.history


def train_dual(cfg: PiradsConfig, images: Tensor, labels: Tensor, unlabelled: Tensor | None,
               run_dir: Path | None, *, progress: bool = False) -> tuple[nn.Module, dict]:
    """Stage 1 then (``cotrain_epochs > 0``) stage 2; returns the model and both histories."""
    from .losses import CoTrainingLoss, DualPathLoss

    supervised = DualPathLoss(5, groups=tuple(map(tuple, cfg.groups)), spacing=cfg.spacing)
    model = build_model(cfg, "dual")

    def step1(net, batch):
        x, y = batch
        return supervised(net(x), y)

    def sub(name: str) -> Path | None:
        return None if run_dir is None else Path(run_dir) / name

    model, h1 = _fit(cfg, model, TensorDataset(images, labels), step1, cfg.epochs, sub("stage1"),
                     progress, cfg.seed)
    histories = {"stage1": h1}
    if cfg.cotrain_epochs > 0:
        cotrain = CoTrainingLoss(supervised, w_cons=cfg.consistency_weight)
        x_all, y_all = images, labels
        if unlabelled is not None and len(unlabelled):
            x_all = torch.cat([images, unlabelled])
            y_all = torch.cat([labels, torch.full((len(unlabelled), *labels.shape[1:]), -1,
                                                  dtype=labels.dtype)])

        def step2(net, batch):
            x, y = batch
            return cotrain(net(x), y, None)

        model, h2 = _fit(cfg, model, TensorDataset(x_all, y_all), step2, cfg.cotrain_epochs,
                         sub("stage2"), progress, cfg.seed + 1)
        histories["stage2"] = h2
    return model.cpu().eval(), histories


def train_single(cfg: PiradsConfig, images: Tensor, labels: Tensor, run_dir: Path | None, *,
                 progress: bool = False) -> tuple[nn.Module, list]:
    """The single-path MONAI baseline: DiceCE, same epochs (both stages' worth) and optimiser."""
    from monai.losses import DiceCELoss

    loss = DiceCELoss(to_onehot_y=True, softmax=True)

    def step(net, batch):
        x, y = batch
        return loss(net(x)["fused"], y)

    model, history = _fit(cfg, build_model(cfg, "single"), TensorDataset(images, labels), step,
                          cfg.epochs + cfg.cotrain_epochs, run_dir, progress, cfg.seed)
    return model.cpu().eval(), history
