"""Two-stage training of the dual-path network on the core engine (Das et al. 2023,
arXiv:2309.12970): stage 1 supervised (Dice + CE per branch weighted toward its zone group, the
fused output, gland mask and signed distance); stage 2 co-training, which keeps every supervised
term on the labelled volumes and adds the branches' consistency on labelled and unlabelled
volumes with a ramped-up weight. The single-path MONAI baseline is trained with the same
budget and the same Dice + CE settings."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from .config import PiradsConfig
from .labels import IDENTITY, LabelMap
from .zones import N_CLASSES


def list_cases(images: Path, labels: Path | None = None) -> list[tuple[str, Path, Path | None]]:
    """(case, image, label) triples of an nnU-Net/MSD-style pair of folders of T2 volumes."""
    from medcl.io.cases import list_cases as _list

    return _list(images, labels, what="T2 volume")


def load_cases(cfg: PiradsConfig, cases, *, with_labels: bool,
               label_map: LabelMap = IDENTITY) -> tuple[Tensor, Tensor | None]:
    """Preprocessed images (N, 1, X, Y, Z) and zone labels (N, 1, X, Y, Z) of the cases.

    Each file is read once, by :func:`medcl.pirads.labels.read_case`, which checks it (corrupt,
    4-D without a channel, NaN, label geometry, codes ``label_map`` does not know: an error
    naming the file), and the volumes are preprocessed as read; a bad case stops the run before
    training starts. Labels are remapped with ``label_map`` (the dataset's codes -> ours).
    """
    from .labels import read_case
    from .transforms import preprocess, preprocess_transforms

    transforms = preprocess_transforms(spacing=cfg.spacing, crop=cfg.crop,
                                       with_label=with_labels)
    images, labels = [], []
    for _, image, label in cases:
        vol, lab = read_case(image, label if with_labels else None, channel=cfg.channel,
                             label_map=label_map)
        data = preprocess(vol, lab, transforms=transforms)
        images.append(torch.as_tensor(data["image"]).float())
        if with_labels:
            # nearest-neighbour resampling and zero padding keep the source codes, so the map
            # applies unchanged after preprocessing
            labels.append(label_map.apply(torch.as_tensor(data["label"]).long()))
    return torch.stack(images), (torch.stack(labels) if with_labels else None)


def build_model(cfg: PiradsConfig, kind: str = "dual") -> nn.Module:
    """The dual-path network (``"dual"``) or the single-path baseline (anything else)."""
    from .model import DualPathNet, SinglePathNet

    if kind == "dual":
        return DualPathNet(1, N_CLASSES, filters=cfg.filters, groups=tuple(map(tuple, cfg.groups)))
    return SinglePathNet(1, N_CLASSES, filters=cfg.filters)


def _fit(cfg, model, dataset, step, epochs, run_dir, progress, seed):
    from medcl.contrastive.engine import Engine, EngineConfig

    engine = Engine(EngineConfig(max_epochs=epochs, seed=seed, progress=progress), run_dir)
    loader = DataLoader(dataset, batch_size=min(cfg.batch_size, len(dataset)), shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return engine.fit(model, optimizer, loader, step), engine.history


def _sub(run_dir: Path | None, name: str) -> Path | None:
    return None if run_dir is None else Path(run_dir) / name


def ce_weights(cfg: PiradsConfig, labels: Tensor) -> Tensor | None:
    """Frequency-balancing CE weights of the training labels (``None`` unless
    ``cfg.balance_ce``); see :func:`medcl.pirads.losses.balance_weights`."""
    from .losses import balance_weights

    return balance_weights(labels, N_CLASSES) if cfg.balance_ce else None


def supervised_loss(cfg: PiradsConfig, labels: Tensor | None = None):
    """The stage-1 :class:`~.losses.DualPathLoss` of ``cfg`` (CE balanced on ``labels``)."""
    from .losses import DualPathLoss

    return DualPathLoss(N_CLASSES, groups=tuple(map(tuple, cfg.groups)),
                        other_weight=cfg.other_weight, spacing=cfg.spacing,
                        ce_weight=None if labels is None else ce_weights(cfg, labels))


def train_stage1(cfg: PiradsConfig, images: Tensor, labels: Tensor, run_dir: Path | None, *,
                 progress: bool = False) -> tuple[nn.Module, list]:
    """Stage 1: a fresh dual-path network trained ``cfg.epochs`` epochs on the labelled cases."""
    supervised = supervised_loss(cfg, labels)

    def step(net, batch):
        x, y = batch
        return supervised(net(x), y)

    return _fit(cfg, build_model(cfg, "dual"), TensorDataset(images, labels), step, cfg.epochs,
                _sub(run_dir, "stage1"), progress, cfg.seed)


def train_stage2(cfg: PiradsConfig, model: nn.Module, images: Tensor, labels: Tensor,
                 unlabelled: Tensor | None, run_dir: Path | None, *,
                 progress: bool = False) -> tuple[nn.Module, list]:
    """Stage 2 (co-training): ``cfg.cotrain_epochs`` more epochs of ``model`` (trained in place).

    Unlabelled volumes join the labelled ones with labels ``-1``; they only feed the
    consistency term. The consistency weight rises from ~0 to ``cfg.consistency_weight`` over
    the first ``cfg.consistency_rampup`` fraction of the stage's steps.
    """
    from .losses import CoTrainingLoss, sigmoid_rampup

    cotrain = CoTrainingLoss(supervised_loss(cfg, labels), w_cons=cfg.consistency_weight)
    x_all, y_all = images, labels
    if unlabelled is not None and len(unlabelled):
        x_all = torch.cat([images, unlabelled])
        y_all = torch.cat([labels, torch.full((len(unlabelled), *labels.shape[1:]), -1,
                                              dtype=labels.dtype)])
    batch = min(cfg.batch_size, len(x_all))
    ramp_steps = round(cfg.consistency_rampup * cfg.cotrain_epochs * -(-len(x_all) // batch))
    steps = [0]

    def step(net, batch):
        x, y = batch
        w = cfg.consistency_weight * sigmoid_rampup(steps[0], ramp_steps)
        steps[0] += 1
        return cotrain(net(x), y, None, w_cons=w)

    return _fit(cfg, model, TensorDataset(x_all, y_all), step, cfg.cotrain_epochs,
                _sub(run_dir, "stage2"), progress, cfg.seed + 1)


def train_dual(cfg: PiradsConfig, images: Tensor, labels: Tensor, unlabelled: Tensor | None,
               run_dir: Path | None, *, progress: bool = False,
               keep_stage1: bool = False) -> tuple[nn.Module, dict]:
    """Stage 1 then (``cotrain_epochs > 0``) stage 2; returns the model and both histories.

    With ``keep_stage1`` the histories also hold ``"stage1_model"``, a copy of the network as
    it was after stage 1 (to compare the stages on one training run).
    """
    model, h1 = train_stage1(cfg, images, labels, run_dir, progress=progress)
    histories: dict = {"stage1": h1}
    if keep_stage1:
        histories["stage1_model"] = copy.deepcopy(model).cpu().eval()
    if cfg.cotrain_epochs > 0:
        model, h2 = train_stage2(cfg, model, images, labels, unlabelled, run_dir,
                                 progress=progress)
        histories["stage2"] = h2
    return model.cpu().eval(), histories


def train_single(cfg: PiradsConfig, images: Tensor, labels: Tensor, run_dir: Path | None, *,
                 progress: bool = False) -> tuple[nn.Module, list]:
    """The single-path MONAI baseline: the fused output's Dice + CE (Dice without background,
    pooled over the batch; CE balanced alike), both stages' epochs, the same optimiser."""
    from .losses import ZoneDiceCE

    loss = ZoneDiceCE(N_CLASSES, ce_weight=ce_weights(cfg, labels))

    def step(net, batch):
        x, y = batch
        return loss(net(x)["fused"], y)

    model, history = _fit(cfg, build_model(cfg, "single"), TensorDataset(images, labels), step,
                          cfg.epochs + cfg.cotrain_epochs, run_dir, progress, cfg.seed)
    return model.cpu().eval(), history
