"""``medcl core skeleton``: HiCLR / MoCo pretraining on skeleton sequences, and the linear, kNN
and semi-supervised fine-tuning evaluations of a pretrained encoder.

Pretraining runs one epoch per :class:`~medcl.contrastive.engine.Engine` call as
:mod:`medcl.core.train` does (the run's own checkpoint carries the model, queue and optimiser,
so an interrupted run resumes), with one progress line per epoch on stderr.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medcl.io.errors import ConfigError, RunFolderError

from .skeleton_data import SkeletonSet, load_data, parse_layout

METHODS = ("hiclr", "moco")
DEPTHS = ("stgcn", "tiny")


@dataclass
class SkeletonConfig:
    """One pretraining run (``medcl core skeleton pretrain``); defaults are HiCLR's NTU-60
    config (SGD lr 0.1, weight decay 1e-4, batch 128, queue 32768, momentum 0.999,
    temperature 0.07, 128-d projection, ST-GCN at width 16 with 256-d features, 50 frames)
    except the epochs (300 in the paper).

    ``queue_size=None`` takes 32768 capped to the largest multiple of the batch below the
    number of training sequences (a queue longer than the data holds stale copies of each
    positive as negatives). ``frames=None``: 50 for folders, 20 for ``synth``.
    """

    method: str = "hiclr"
    data: str = "synth"
    labels: str | None = None
    layout: str = "ntu25"
    frames: int | None = None
    nan: str = "interpolate"
    depth: str = "stgcn"
    hidden: int = 16
    out_dim: int = 256
    proj_dim: int = 128
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 1e-4
    queue_size: int | None = None
    momentum: float = 0.999
    temperature: float = 0.07
    synth_per_class: int = 40
    test_size: float = 0.3
    knn_k: int = 20
    seed: int = 0

    def check(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got "
                              f"{self.method!r}")
        if self.depth not in DEPTHS:
            raise ConfigError(f"--depth must be one of {', '.join(DEPTHS)}, got {self.depth!r}")
        for name in ("epochs", "batch_size", "hidden", "out_dim", "proj_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        if self.frames is not None and self.frames < 4:
            raise ConfigError("--frames must be >= 4")
        if not 0.0 <= self.momentum <= 1.0 or self.temperature <= 0 or self.lr <= 0:
            raise ConfigError("--momentum must be in [0, 1]; --temperature and --lr > 0")
        if not 0.0 < self.test_size < 1.0:
            raise ConfigError("--test-size must be in (0, 1)")


def resolve(cfg: SkeletonConfig, n_train: int) -> SkeletonConfig:
    """Fill ``frames`` and ``queue_size`` (see :class:`SkeletonConfig`)."""
    frames = cfg.frames or (20 if cfg.data == "synth" else 50)
    batch = min(cfg.batch_size, n_train)
    queue = cfg.queue_size
    if queue is None:
        queue = max(batch, min(32768, (max(n_train - batch, batch) // batch) * batch))
    return replace(cfg, frames=frames, batch_size=batch, queue_size=queue)


def build_encoder(cfg: SkeletonConfig, layout: Any, channels: int) -> nn.Module:
    from medcl.contrastive.sequences.skeleton.graph import spatial_adjacency
    from medcl.contrastive.sequences.skeleton.stgcn import STGCN

    return STGCN(spatial_adjacency(layout), in_channels=channels, hidden=cfg.hidden,
                 out_dim=cfg.out_dim, depth=cfg.depth)


def build_model(cfg: SkeletonConfig, layout: Any, channels: int) -> nn.Module:
    from medcl.contrastive.sequences.skeleton.augment import GrowingAugment
    from medcl.contrastive.sequences.skeleton.hiclr import HiCLR

    return HiCLR(build_encoder(cfg, layout, channels), GrowingAugment(layout.flip),
                 proj_dim=cfg.proj_dim, queue_size=int(cfg.queue_size or 32768),
                 momentum=cfg.momentum, temperature=cfg.temperature,
                 branches=3 if cfg.method == "hiclr" else 1)


def split(data: SkeletonSet, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test indices when labelled (every class in both when it can be);
    all sequences for training otherwise."""
    n = len(data.x)
    if data.labels is None:
        return np.arange(n), np.arange(0)
    from sklearn.model_selection import train_test_split

    counts = np.bincount(data.labels)
    strat = data.labels if counts[counts > 0].min() >= 2 else None
    tr, te = train_test_split(np.arange(n), test_size=test_size, random_state=seed,
                              stratify=strat)
    return np.sort(tr), np.sort(te)


@dataclass
class Trained:
    model: nn.Module
    history: list[dict[str, Any]]
    seconds: float


def train(cfg: SkeletonConfig, x: torch.Tensor, layout: Any, run_dir: Path | None, *,
          resume: bool = False, progress: bool = True) -> Trained:
    """Pretrain a resolved ``cfg`` on ``x (N, C, T, V, M)``; one Engine call per epoch."""
    from torch.utils.data import DataLoader, TensorDataset

    from medcl.contrastive.engine import Engine, EngineConfig, seed_everything
    from medcl.util.clock import clock

    seed_everything(cfg.seed)
    loader = DataLoader(TensorDataset(x), batch_size=cfg.batch_size, shuffle=True,
                        drop_last=True, generator=torch.Generator())
    model = build_model(cfg, layout, int(x.shape[1]))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9,
                          weight_decay=cfg.weight_decay)
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        engine = Engine(EngineConfig(max_epochs=epoch + 1, seed=cfg.seed, resume=run_dir
                                     is not None, progress=False, checkpoint_every=1), run_dir)
        if epoch == 0 and not resume and engine.checkpoint_path is not None \
                and engine.checkpoint_path.exists():
            engine.checkpoint_path.unlink()
        engine.fit(model, opt, loader, lambda net, b: net(b))
        history = engine.history
        if progress and history:
            values = " ".join(f"{k}={v:.4g}" for k, v in history[-1].items()
                              if k not in ("epoch", "step", "seconds", "lr"))
            print(f"{cfg.method} epoch {epoch + 1}/{cfg.epochs} {values} (elapsed "
                  f"{clock(time.perf_counter() - start)})", file=sys.stderr, flush=True)
    model.to("cpu")
    return Trained(model, history, time.perf_counter() - start)


def embed(encoder: nn.Module, x: torch.Tensor, batch: int = 256) -> np.ndarray:
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def data_record(data: SkeletonSet) -> dict[str, Any]:
    lay = data.layout
    return {"source": data.source, "n_sequences": len(data.x), "channels": int(data.x.shape[1]),
            "frames": int(data.x.shape[2]), "joints": int(data.x.shape[3]),
            "persons": int(data.x.shape[4]), "classes": data.classes,
            "layout": {"name": lay.name, "num_joints": lay.num_joints,
                       "edges": [list(e) for e in lay.edges], "center": lay.center,
                       "flip": None if lay.flip is None else list(lay.flip)},
            "notes": data.notes}


def _load(cfg: SkeletonConfig, data: str, labels: str | None) -> SkeletonSet:
    return load_data(data, cfg.layout, int(cfg.frames or 50), nan=cfg.nan,
                     labels=None if labels is None else Path(labels), seed=cfg.seed,
                     n_per_class=cfg.synth_per_class)


def pretrain_run(cfg: SkeletonConfig, out: Path, *, resume: bool = False,
                 progress: bool = True) -> Path:
    """``medcl core skeleton pretrain``: check everything, then train into ``out``
    (config.yaml, metrics.csv, model.pt, loss.png, probes.csv when labelled, report.md)."""
    import pandas as pd

    from medcl.contrastive.engine import seed_everything
    from medcl.contrastive.probe import knn_accuracy, linear_probe_accuracy
    from medcl.io import RunFolder

    cfg.check()
    cfg = replace(cfg, frames=cfg.frames or (20 if cfg.data == "synth" else 50))
    data = _load(cfg, cfg.data, cfg.labels)
    tr, te = split(data, cfg.test_size, cfg.seed)
    if len(tr) < 2:
        raise ConfigError(f"{data.source} gives {len(tr)} training sequence(s)",
                          fix="give a folder with more sequences")
    cfg = resolve(cfg, len(tr))
    folder = RunFolder.create(out, overwrite=not resume)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "command": "medcl core skeleton pretrain", "data_record": data_record(data)})
    seed_everything(cfg.seed)
    initial = build_model(cfg, data.layout, int(data.x.shape[1])).encoder
    trained = train(cfg, data.x[tr], data.layout, folder.root, resume=resume, progress=progress)
    folder.save_model(trained.model.state_dict())
    from .figures import plot_loss

    plot_loss(folder, trained.history, cfg.method, keys=("loss", "nce", "dm_0_1", "dm_1_2"))
    paper = ("HiCLR (Zhang, Lin, Liu, AAAI 2023): MoCo + growing-augmentation branches with "
             "hierarchical consistency" if cfg.method == "hiclr" else
             "MoCo baseline (SkeletonCLR: one basic-augmentation branch)")
    lines = [f"# {cfg.method} on {data.source}", "",
             f"{paper}. ST-GCN ({cfg.depth}, width {cfg.hidden}, {cfg.out_dim}-d features), "
             f"batch {cfg.batch_size}, queue {cfg.queue_size}, momentum {cfg.momentum}, "
             f"temperature {cfg.temperature}, {len(trained.history)} epochs in "
             f"{trained.seconds:.0f} s on {len(tr)} training sequences; seed {cfg.seed}.", ""]
    lines += [f"- {note}" for note in data.notes]
    if data.labels is not None and len(te) and len(np.unique(data.labels)) > 1:
        y = data.labels
        rows = []
        for name, enc in (("encoder, random init", initial),
                          (f"encoder, {cfg.method}", trained.model.encoder)):
            z = embed(enc, data.x)
            k = min(cfg.knn_k, len(tr))
            rows.append({"features": name,
                         "knn": knn_accuracy(z[tr], y[tr], z[te], y[te], k=k),
                         "linear": linear_probe_accuracy(z[tr], y[tr], z[te], y[te])})
        table = folder.write_table("probes", pd.DataFrame(rows))
        lines += ["", f"Probes on the {len(te)} held-out sequences (kNN: cosine, "
                  f"k={min(cfg.knn_k, len(tr))}; linear: logistic regression), accuracy:", "",
                  table]
    else:
        lines += ["", "No labels (or no held-out sequences): no probe was scored."]
    lines += ["", "![training loss](loss.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


# ------------------------------------------------------------------------------ evaluation


def load_run(run_dir: Path) -> tuple[SkeletonConfig, dict[str, Any], nn.Module]:
    """The config, data record and pretrained encoder of a ``pretrain`` run folder."""
    from medcl.contrastive.sequences.skeleton.graph import SkeletonLayout
    from medcl.io import RunFolder

    folder = RunFolder(Path(run_dir))
    record = folder.read_config()
    try:
        cfg = SkeletonConfig(**record["config"])
        info = record["data_record"]
        lay = info["layout"]
        layout = SkeletonLayout(lay["name"], int(lay["num_joints"]),
                                tuple(tuple(e) for e in lay["edges"]), int(lay["center"]),
                                None if lay["flip"] is None else tuple(lay["flip"]))
        channels = int(info["channels"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError("config.yaml was not written by `medcl core skeleton pretrain`",
                             path=folder.config_path,
                             fix="point --model to a skeleton pretrain run folder") from exc
    state = folder.load_model()
    encoder = build_encoder(cfg, layout, channels)
    weights = {k.removeprefix("encoder."): v for k, v in state.items()
               if k.startswith("encoder.")}
    try:
        encoder.load_state_dict(weights)
    except RuntimeError as exc:
        raise RunFolderError("model.pt does not match the encoder of config.yaml",
                             path=folder.model_path, fix="retrain into this folder") from exc
    info["layout_object"] = layout
    return cfg, info, encoder


def label_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Positions of ``round(fraction x count)`` (at least one) sequences of every class, as
    the authors' semi-supervised feeder draws them."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * len(idx))))
        keep.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def finetune(encoder: nn.Module, x: torch.Tensor, y: np.ndarray, n_classes: int, flip: Any,
             epochs: int, seed: int, lr: float = 1e-3) -> tuple[nn.Module, list[float]]:
    """Encoder + linear classifier trained end to end on ``(x, y)`` with the basic
    augmentation (crop + shear), AdamW; returns the classifier and the epoch losses."""
    from medcl.contrastive.sequences.skeleton.augment import GrowingAugment

    torch.manual_seed(seed)
    model = nn.Sequential(copy.deepcopy(encoder), nn.Linear(encoder.out_dim, n_classes))
    aug = GrowingAugment(flip)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    yt = torch.as_tensor(y, dtype=torch.long)
    batch = min(64, len(x))
    losses = []
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            if len(idx) < 2:  # batch norm needs two
                continue
            loss = nn.functional.cross_entropy(model(aug.apply(x[idx], 0)), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
    model.eval()
    return model, losses


@dataclass
class EvalConfig:
    """``medcl core skeleton evaluate`` settings."""

    model: str
    data: str
    labels: str | None = None
    label_fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    finetune_epochs: int = 30
    test_size: float = 0.3
    nan: str = "interpolate"
    seed: int = 0


def evaluate_run(ecfg: EvalConfig, out: Path, *, progress: bool = True) -> Path:
    """Linear, kNN and fine-tuned accuracy per label fraction into ``out`` (config.yaml,
    evaluation.csv, metrics.csv = fine-tuning log, model.pt = the last fine-tuned
    classifier, evaluation.png, report.md)."""
    import pandas as pd

    from medcl.contrastive.probe import knn_accuracy, linear_probe_accuracy
    from medcl.io import RunFolder
    from medcl.io.atomic import refuse_overwrite

    for f in ecfg.label_fractions:
        if not 0.0 < f <= 1.0:
            raise ConfigError(f"--label-fraction values must be in (0, 1], got {f}")
    if ecfg.finetune_epochs < 0:
        raise ConfigError("--finetune-epochs must be >= 0")
    cfg, info, encoder = load_run(Path(ecfg.model))
    layout = info.pop("layout_object")
    data_cfg = replace(cfg, layout="ntu25" if ecfg.data == "synth" else cfg.layout, nan=ecfg.nan,
                       seed=ecfg.seed)
    if ecfg.data != "synth" and layout.name not in ("ntu25", "coco17"):
        data = _load_with_layout(data_cfg, ecfg, layout)
    else:
        data = _load(data_cfg, ecfg.data, ecfg.labels)
    if data.labels is None or len(np.unique(data.labels)) < 2:
        raise ConfigError(f"{data.source} has no labels of two classes or more to evaluate on",
                          fix="give --labels labels.csv (file,label) or a labels.csv in the "
                          "data folder")
    if data.x.shape[3] != encoder.num_joints or data.x.shape[1] != encoder.in_channels:
        raise ConfigError(f"{data.source} has {data.x.shape[3]} joints x {data.x.shape[1]} "
                          f"coordinates; the model was pretrained on {encoder.num_joints} x "
                          f"{encoder.in_channels}", fix="evaluate on data of the same layout")
    refuse_overwrite(out, [ecfg.model])
    tr, te = split(data, ecfg.test_size, ecfg.seed)
    y = data.labels
    n_classes = len(data.classes or [])
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config(ecfg, seed=ecfg.seed, extra={
        "command": "medcl core skeleton evaluate", "pretrain": asdict(cfg),
        "data_record": data_record(data)})
    z = embed(encoder, data.x)
    rows, log, last = [], [], None
    for f in ecfg.label_fractions:
        sub = tr[label_subset(y[tr], f, ecfg.seed)]
        k = min(20, len(sub))
        row = {"label_fraction": f, "n_labelled": len(sub),
               "knn": knn_accuracy(z[sub], y[sub], z[te], y[te], k=k),
               "linear": linear_probe_accuracy(z[sub], y[sub], z[te], y[te])}
        if ecfg.finetune_epochs:
            clf, losses = finetune(encoder, data.x[sub], y[sub], n_classes, layout.flip,
                                   ecfg.finetune_epochs, ecfg.seed)
            with torch.no_grad():
                pred = torch.cat([clf(data.x[te][i:i + 256]) for i in range(0, len(te), 256)])
            row["finetune"] = float((pred.argmax(1).numpy() == y[te]).mean())
            log += [{"label_fraction": f, "epoch": e + 1, "loss": v}
                    for e, v in enumerate(losses)]
            last = clf
        rows.append(row)
        if progress:
            vals = " ".join(f"{k}={v:.3f}" for k, v in row.items()
                            if k not in ("label_fraction", "n_labelled"))
            print(f"evaluate fraction {f:g} ({len(sub)} labels) {vals}", file=sys.stderr,
                  flush=True)
    table = folder.write_table("evaluation", pd.DataFrame(rows))
    folder.write_metrics(log or [{"label_fraction": None, "epoch": 0, "loss": None}])
    if last is not None:
        folder.save_model(last.state_dict())
    _plot_eval(folder, rows)
    lines = [f"# Evaluation of {ecfg.model} on {data.source}", "",
             f"Pretrained with {cfg.method}; {len(tr)} training / {len(te)} test sequences "
             f"(stratified, seed {ecfg.seed}). Per label fraction, a class-balanced subset of "
             "the training sequences is labelled: kNN (cosine, k = min(20, labels)) and "
             "linear (logistic regression) on frozen features; fine-tune: encoder + linear "
             f"layer, {ecfg.finetune_epochs} epochs, AdamW 1e-3, crop + shear augmentation.",
             ""]
    lines += [f"- {note}" for note in data.notes]
    lines += ["", "Accuracy on the test sequences:", "", table, "",
              "![accuracy per label fraction](evaluation.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


def _load_with_layout(cfg: SkeletonConfig, ecfg: EvalConfig, layout: Any) -> SkeletonSet:
    from .skeleton_data import load_folder

    return load_folder(Path(ecfg.data), layout, int(cfg.frames or 50), nan=ecfg.nan,
                       labels_csv=None if ecfg.labels is None else Path(ecfg.labels))


def _plot_eval(folder: Any, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    fr = [r["label_fraction"] for r in rows]
    for key in ("knn", "linear", "finetune"):
        if key in rows[0]:
            ax.plot(fr, [r[key] for r in rows], marker="o", label=key)
    ax.set_xscale("log")
    ax.set_xlabel("label fraction")
    ax.set_ylabel("test accuracy")
    ax.legend()
    fig.tight_layout()
    folder.save_figure("evaluation", fig)
    plt.close(fig)


__all__ = ["EvalConfig", "SkeletonConfig", "evaluate_run", "finetune", "label_subset",
           "load_run", "parse_layout", "pretrain_run", "train"]
