"""Pretraining one image method through the engine, and the probes that score it.

Training runs one epoch per :meth:`Engine.fit <medcl.contrastive.engine.Engine.fit>` call,
resuming from the run's own checkpoint each time: the engine's per-epoch reseeding makes this
the same run as one long call, and it lets the recipe's per-epoch hooks run between epochs
(SwAV's frozen prototypes, a queue switched on late) and a wall-clock budget stop training at an
epoch boundary (``compare``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medcl.io.errors import ConfigError

from .config import ImageConfig
from .data import BatchAugment, ImageSet, load_data, split
from .model import ImageModel, build_backbone
from .recipes import Context, Recipe, get_recipe


@dataclass
class Trained:
    """A trained model, its per-epoch log and the training wall time."""

    model: ImageModel
    history: list[dict[str, Any]]
    seconds: float
    parts: Any = None


def resolve(cfg: ImageConfig, recipe: Recipe) -> ImageConfig:
    """``cfg`` with the recipe's defaults filled in (views, temperature)."""
    if recipe.temperature is None and cfg.temperature is not None:
        raise ConfigError(f"--method {recipe.name} has no single temperature to set",
                          fix="drop --temperature (the method uses its paper's settings)")
    return replace(cfg, views=cfg.views or recipe.default_views,
                   temperature=cfg.temperature or recipe.temperature)


def check_labels(recipe: Recipe, data: ImageSet) -> None:
    """Refuse a method that needs labels on unlabelled data."""
    if recipe.needs_labels and data.labels is None:
        raise ConfigError(f"--method {recipe.name} needs labels and {data.source} has none",
                          fix="give --labels labels.csv (file,label) or put the images in one "
                          "subfolder per class")


def build_model(cfg: ImageConfig, recipe: Recipe, channels: int, size: tuple[int, int],
                n_classes: int, steps_per_epoch: int = 1) -> tuple[ImageModel, Any]:
    """The :class:`ImageModel` of a resolved config and the recipe's :class:`Parts`."""
    encoder = build_backbone(cfg.backbone, channels, cfg.width)
    views = int(cfg.views or recipe.default_views)
    tau = float(cfg.temperature or recipe.temperature or 1.0)  # 1.0: unused by the method
    ctx = Context(feat_dim=encoder.out_dim, proj_dim=cfg.proj_dim, views=views,
                  n_classes=n_classes, temperature=tau,
                  epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
                  batch_size=cfg.batch_size)
    parts = recipe.build(ctx)
    augment = BatchAugment(size, channels, views, recipe.n_small(views))
    return ImageModel(encoder, parts.head, parts.criterion, parts.step, augment), parts


def train(cfg: ImageConfig, recipe: Recipe, images: torch.Tensor, labels: np.ndarray | None,
          n_classes: int, run_dir: Path, *, budget_seconds: float | None = None,
          resume: bool = False, progress: bool = True) -> Trained:
    """Train a resolved ``cfg`` on ``images`` ``(N, C, H, W)`` into ``run_dir``.

    ``cfg.epochs`` epochs, or as many whole epochs as fit in ``budget_seconds`` (at least one:
    training stops when the next epoch, timed like the last, would pass the budget). Labels go to
    the step only when the method needs them.
    """
    import sys

    from torch.utils.data import DataLoader, TensorDataset

    from medcl.contrastive.engine import Engine, EngineConfig, seed_everything
    from medcl.util.clock import clock

    seed_everything(cfg.seed)
    y = (torch.full((len(images),), -1, dtype=torch.long)
         if labels is None or not recipe.needs_labels else torch.as_tensor(labels))
    batch = min(cfg.batch_size, len(images))
    loader = DataLoader(TensorDataset(images, y), batch_size=batch, shuffle=True,
                        drop_last=True, generator=torch.Generator())
    size = (int(images.shape[2]), int(images.shape[3]))
    model, parts = build_model(cfg, recipe, int(images.shape[1]), size, n_classes, len(loader))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epochs = cfg.epochs if budget_seconds is None else 10**6
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    last = 0.0
    for epoch in range(epochs):
        if budget_seconds is not None and epoch and time.perf_counter() - start + last \
                > budget_seconds:
            break
        t0 = time.perf_counter()
        model.epoch.fill_(epoch)
        if parts.on_epoch is not None:
            parts.on_epoch(model, epoch)
        engine = Engine(EngineConfig(max_epochs=epoch + 1, seed=cfg.seed, resume=True,
                                     progress=False, checkpoint_every=1), run_dir)
        if epoch == 0 and not resume and engine.checkpoint_path.exists():
            engine.checkpoint_path.unlink()
        engine.fit(model, opt, loader, lambda net, b: net(b), val_fn=parts.epoch_logs)
        history = engine.history
        last = time.perf_counter() - t0
        if progress and history:
            total = "" if budget_seconds is None else f" (budget {budget_seconds:.0f} s)"
            of = f"/{epochs}" if budget_seconds is None else ""
            values = " ".join(f"{k}={v:.4g}" for k, v in history[-1].items()
                              if k not in ("epoch", "step", "seconds", "lr"))
            print(f"{cfg.method} epoch {epoch + 1}{of} {values} (elapsed "
                  f"{clock(time.perf_counter() - start)}){total}", file=sys.stderr, flush=True)
    model.to("cpu")
    return Trained(model, history, time.perf_counter() - start, parts)


def probe(encoder: nn.Module, data: ImageSet, train_idx: np.ndarray, test_idx: np.ndarray,
          k: int) -> dict[str, float]:
    """kNN (:func:`~medcl.contrastive.probe.knn_accuracy`) and linear-probe accuracy of the
    frozen encoder's features, fit on ``train_idx`` and scored on ``test_idx``."""
    from medcl.contrastive.probe import embed, knn_accuracy, linear_probe_accuracy

    assert data.labels is not None
    z = embed(encoder, data.images)
    y = data.labels
    return {"knn": knn_accuracy(z[train_idx], y[train_idx], z[test_idx], y[test_idx], k=k),
            "linear": linear_probe_accuracy(z[train_idx], y[train_idx], z[test_idx],
                                            y[test_idx])}


def can_probe(data: ImageSet, test_idx: np.ndarray) -> bool:
    return data.labels is not None and len(test_idx) > 0 and len(np.unique(data.labels)) > 1


def data_record(data: ImageSet) -> dict[str, Any]:
    """What ``config.yaml`` records of the data (``embed`` rebuilds the input from it)."""
    return {"source": data.source, "n_images": len(data.images), "channels": data.channels,
            "height": data.size[0], "width": data.size[1], "classes": data.classes,
            "notes": data.notes}


def pretrain_run(cfg: ImageConfig, out: Path, *, resume: bool = False,
                 progress: bool = True) -> Path:
    """``medcl core image pretrain``: check everything, then train into ``out``.

    ``out`` gets ``config.yaml`` (resolved), ``metrics.csv`` (per epoch), ``model.pt``,
    ``loss.png``, ``probes.csv`` (when the data are labelled) and ``report.md``.
    """
    import pandas as pd

    from medcl.io import RunFolder

    recipe = get_recipe(cfg.method)
    data = load_data(cfg.data, labels_csv=cfg.labels, image_size=cfg.image_size)
    check_labels(recipe, data)
    cfg = resolve(cfg, recipe)
    tr, te = split(data, cfg.test_size, cfg.seed)
    if len(tr) < 2:
        raise ConfigError(f"{data.source} gives {len(tr)} training image(s)",
                          fix="give a folder with more images")
    folder = RunFolder.create(out, overwrite=not resume)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "command": "medcl core image pretrain", "data_record": data_record(data),
        "recipe": {"paper": recipe.paper, "module": recipe.module,
                   "small_crops": recipe.n_small(int(cfg.views or 2)), "notes": recipe.notes}})
    n_classes = len(data.classes or [])
    labels = None if data.labels is None else data.labels[tr]
    from medcl.contrastive.engine import seed_everything

    seed_everything(cfg.seed)  # the same initialisation as train() draws
    initial = build_model(cfg, recipe, data.channels, data.size, max(n_classes, 1))[0].encoder
    trained = train(cfg, recipe, data.images[tr], labels, max(n_classes, 1), folder.root,
                    resume=resume, progress=progress)
    folder.save_model(trained.model.state_dict())
    from .figures import plot_loss

    plot_loss(folder, trained.history, cfg.method)
    lines = [f"# {cfg.method} on {data.source}", "",
             f"{recipe.paper}. Backbone {cfg.backbone}, {cfg.views} views, batch "
             f"{cfg.batch_size}, temperature {cfg.temperature}, {len(trained.history)} epochs "
             f"in {trained.seconds:.0f} s on {len(tr)} training images; seed {cfg.seed}.", ""]
    lines += [f"- {note}" for note in data.notes]
    if can_probe(data, te):
        rows = [{"features": "encoder, random init", **probe(initial, data, tr, te, cfg.knn_k)},
                {"features": f"encoder, {cfg.method}",
                 **probe(trained.model.encoder, data, tr, te, cfg.knn_k)}]
        table = folder.write_table("probes", pd.DataFrame(rows))
        lines += ["", f"Probes on the {len(te)} held-out images (kNN: cosine, k={cfg.knn_k}; "
                  "linear: logistic regression), accuracy:", "", table]
    else:
        lines += ["", "No labels (or no held-out images): no probe was scored."]
    lines += ["", "![training loss](loss.png)"]
    if trained.parts is not None and trained.parts.report is not None:
        lines += trained.parts.report(trained.model, folder)
    folder.write_report("\n".join(lines))
    return folder.report_path


def load_run(run_dir: Path) -> tuple[ImageConfig, dict[str, Any], nn.Module]:
    """The config, data record and trained encoder of a ``pretrain`` run folder."""
    from medcl.io import RunFolder
    from medcl.io.errors import RunFolderError

    folder = RunFolder(Path(run_dir))
    record = folder.read_config()
    try:
        cfg = ImageConfig(**record["config"])
        info = record["data_record"]
        channels = int(info["channels"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise RunFolderError("config.yaml was not written by `medcl core image pretrain`",
                             path=folder.config_path,
                             fix="point --model to a pretrain run folder") from exc
    state = folder.load_model()
    encoder = build_backbone(cfg.backbone, channels, cfg.width)
    weights = {k.removeprefix("encoder."): v for k, v in state.items()
               if k.startswith("encoder.")}
    try:
        encoder.load_state_dict(weights)
    except RuntimeError as exc:
        raise RunFolderError("model.pt does not match the backbone of config.yaml",
                             path=folder.model_path, fix="retrain into this folder") from exc
    encoder.eval()
    return cfg, info, copy.deepcopy(encoder)
