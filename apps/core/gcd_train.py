"""Training and scoring of ``medcl core gcd``: BaCon and its two baselines in one harness.

Methods (same encoder, augmentations, optimiser, epochs, data):

- ``gcd`` — the GCD baseline (Vaze et al. 2022, CVPR): ``(1 - w) SimCLR + w SupCon`` on the
  projections (``w = 0.35``; SimCLR over all images at ``tau = 1`` and SupCon over the
  labelled ones at ``tau = 0.07``, as the authors' code), classified by semi-supervised k-means
  on the encoder features (:func:`medcl.contrastive.gcd.semi_supervised_kmeans`).
- ``simgcd`` — SimGCD's parametric classifier (Wen et al. 2023, ICCV): a cosine classifier on
  the encoder features trained with ``(1 - w)(self-distillation + me-max) + w CE`` next to the
  GCD representation loss; classified by the classifier's argmax.
- ``bacon`` — BaCon (Bai et al. 2023, NeurIPS): two branches. The classifier branch is SimGCD's
  with the entropy regulariser re-weighted by the estimated distribution; the contrastive
  branch adds soft SupCon over the labelled images and the self-balanced sample of unlabelled
  ones, whose soft labels are the classifier's logit-adjusted predictions. The distribution is
  re-estimated by k-means on the contrastive branch every ``est_every`` epochs. Classified by
  k-means on the contrastive branch's features (as the authors' test).

Departures (scale): a small CNN (``medcl.contrastive.backbones.SmallCNN``) trained from scratch
with AdamW instead of a DINO ViT-B/16 fine-tuned with SGD; the two BaCon branches are two such
CNNs rather than two copies of the last ViT block over shared frozen blocks. Scores are the
transductive ones of the GCD protocol: All / Old / New accuracy on the *unlabelled* training
images.
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
from torch import Tensor, nn

from medcl.io.errors import ConfigError

from .gcd_data import GCDData

METHODS = ("bacon", "gcd", "simgcd")


@dataclass
class GCDConfig:
    """Hyper-parameters of one ``medcl core gcd train`` run (the authors' values where they
    carry over; the epochs, learning rate and width are this scale's).

    Parameters
    ----------
    method : {"bacon", "gcd", "simgcd"}
    data : str
        ``digits-lt``, ``cifar10-lt:DIR`` or a folder.
    known : str
        Comma-separated names of the known classes.
    imbalance : float
        Head / tail ratio of the ``-lt`` data (100 in the paper's main tables).
    label_fraction : float
        Share of each known class that is labelled (0.5, as GCD and BaCon).
    epochs, batch_size, lr, weight_decay, width, proj_dim
        Training; the small CNN's width.
    sup_weight : float
        ``w``, the supervised share of each loss (0.35).
    tau_unsup, tau_sup : float
        SimCLR (1.0) and SupCon / soft SupCon (0.07) temperatures.
    tau_adjust : float
        Logit adjustment strength ``tau`` (0.5).
    alpha_known, alpha_novel : float
        Self-balanced sampling exponents for classes present among the labelled images of the
        batch (0.8) and the others (0.5) (the authors' ``alpha`` and ``beta``).
    reg_p : float
        Exponent of the re-weighted entropy regulariser (1.1).
    est_every : int
        Epochs between distribution estimates (10 in the paper; the first one before training).
    warmup_teacher_epochs : int
        Teacher temperature 0.07 -> 0.04 over these epochs (30 in SimGCD for 200 epochs).
    seed : int
    """

    method: str = "bacon"
    data: str = "digits-lt"
    known: str = "0,1,2,3,4"
    imbalance: float = 100.0
    label_fraction: float = 0.5
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 16
    proj_dim: int = 64
    sup_weight: float = 0.35
    tau_unsup: float = 1.0
    tau_sup: float = 0.07
    tau_adjust: float = 0.5
    alpha_known: float = 0.8
    alpha_novel: float = 0.5
    reg_p: float = 1.1
    est_every: int = 10
    warmup_teacher_epochs: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method!r} is unknown",
                              fix=f"choose one of {', '.join(METHODS)}")
        for flag, value, low in (("--epochs", self.epochs, 1), ("--batch-size",
                                                                 self.batch_size, 4)):
            if value < low:
                raise ConfigError(f"{flag} {value} is too small", fix=f"give {flag} >= {low}")
        if self.lr <= 0:
            raise ConfigError("--lr must be > 0", fix="give e.g. --lr 2e-3")


class CosineClassifier(nn.Module):
    """``<f / |f|, w_c / |w_c|>`` for each class: the weight-normalised last layer of SimGCD /
    BaCon (``norm_last_layer``); the losses divide by the student temperature 0.1."""

    def __init__(self, in_dim: int, n_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, in_dim) * 0.02)

    def forward(self, f: Tensor) -> Tensor:
        return F.normalize(f, dim=1) @ F.normalize(self.weight, dim=1).T


class GCDModel(nn.Module):
    """Encoder + projection (+ classifier); BaCon has a second encoder for its classifier."""

    def __init__(self, method: str, channels: int, n_classes: int, width: int,
                 proj_dim: int) -> None:
        super().__init__()
        from .model import build_backbone

        self.method = method
        self.encoder = build_backbone("small", channels, width)
        d = self.encoder.out_dim
        self.proj = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(inplace=True),
                                  nn.Linear(2 * d, proj_dim))
        self.ce_encoder = build_backbone("small", channels, width) if method == "bacon" else None
        self.classifier = CosineClassifier(d, n_classes) if method != "gcd" else None

    def project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.encoder(x)
        return f, F.normalize(self.proj(f), dim=1)

    def logits(self, x: Tensor, f: Tensor | None = None) -> Tensor:
        assert self.classifier is not None
        if self.ce_encoder is not None:
            f = self.ce_encoder(x)
        elif f is None:
            f = self.encoder(x)
        return self.classifier(f)

    @torch.no_grad()
    def features(self, images: Tensor, batch: int = 512) -> Tensor:
        """Normalised encoder features of the contrastive branch (what k-means clusters)."""
        self.eval()
        out = [F.normalize(self.encoder(images[i:i + batch]), dim=1)
               for i in range(0, len(images), batch)]
        return torch.cat(out)

    @torch.no_grad()
    def predict(self, images: Tensor, batch: int = 512) -> Tensor:
        self.eval()
        return torch.cat([self.logits(images[i:i + batch]).argmax(1)
                          for i in range(0, len(images), batch)])


def _simclr(z: Tensor, tau: float) -> Tensor:
    from medcl.contrastive.functional import LabelMasks, info_nce, pair_labels

    n = z.shape[0] // 2
    ids = pair_labels(n, 2, z.device)
    masks = LabelMasks(ids, ids, torch.arange(2 * n, device=z.device))
    return info_nce(z, z, masks, temperature=tau)


def _supcon(z: Tensor, labels: Tensor, tau: float) -> Tensor:
    from medcl.contrastive.functional import LabelMasks, info_nce

    if len(labels) < 2:
        return z.new_zeros(())
    y = labels.repeat(2)
    return info_nce(z, z, LabelMasks(y, y, torch.arange(len(y), device=z.device)),
                    temperature=tau)


class Estimate:
    """BaCon's current distribution estimate and what derives from it."""

    def __init__(self, counts: np.ndarray, cfg: GCDConfig) -> None:
        from medcl.contrastive.gcd import logit_adjustment, sampling_rates

        self.counts = torch.as_tensor(counts, dtype=torch.float32)
        self.adjust = logit_adjustment(self.counts, cfg.tau_adjust)
        self.rate_known = sampling_rates(self.counts, cfg.alpha_known)
        self.rate_novel = sampling_rates(self.counts, cfg.alpha_novel)


def estimate(model: GCDModel, data: GCDData, cfg: GCDConfig) -> np.ndarray:
    """k-means on the contrastive branch's features -> estimated class counts."""
    from sklearn.cluster import KMeans

    from medcl.contrastive.gcd import estimate_distribution

    feats = model.features(data.images).numpy()
    clusters = KMeans(data.n_classes, n_init=3, random_state=cfg.seed).fit_predict(feats)
    pred = model.predict(data.images).numpy()
    novel_rank = np.bincount(pred, minlength=data.n_classes)[data.n_known:]
    model.train()
    return estimate_distribution(clusters, data.train_labels(), data.n_known, data.n_classes,
                                 novel_rank=novel_rank)


def _step(model: GCDModel, cfg: GCDConfig, views: list[Tensor], y: Tensor, lab: Tensor,
          epoch: int, est: Estimate | None, gen: torch.Generator) -> dict[str, Tensor]:
    from medcl.contrastive.gcd import (
        entropy_regulariser,
        self_balanced_mask,
        self_distillation,
        soft_supcon,
    )
    from medcl.contrastive.gcd.losses import teacher_temperature

    w = cfg.sup_weight
    x = torch.cat(views)
    f, z = model.project(x)
    lab2 = lab.repeat(2)
    parts: dict[str, Tensor] = {}
    parts["simclr"] = _simclr(z, cfg.tau_unsup)
    zl = torch.cat([zz[lab] for zz in z.chunk(2)])
    parts["supcon"] = _supcon(zl, y[lab], cfg.tau_sup)
    if model.method == "gcd":
        loss = (1 - w) * parts["simclr"] + w * parts["supcon"]
        return {"loss": loss, **parts}
    logits = model.logits(x, f)
    t_t = teacher_temperature(epoch, cfg.warmup_teacher_epochs)
    parts["distill"] = self_distillation(logits, t_t)
    counts = est.counts if est is not None else torch.ones(logits.shape[1])
    parts["reg"] = entropy_regulariser(logits, counts, p=cfg.reg_p if est is not None else 0.0)
    parts["ce"] = (F.cross_entropy(logits[lab2] / 0.1, y[lab].repeat(2)) if lab.any()
                   else logits.new_zeros(()))
    loss_ce = (1 - w) * (parts["distill"] + parts["reg"]) + w * parts["ce"]
    if model.method == "simgcd" or est is None or epoch < 1:
        loss_cl = (1 - w) * parts["simclr"] + w * parts["supcon"]
        return {"loss": loss_ce + loss_cl, **parts}
    # BaCon's contrastive branch: soft SupCon over labelled + self-balanced unlabelled images
    with torch.no_grad():
        adj = torch.softmax(logits.detach() / 0.1 - est.adjust, dim=1)
        soft = sum(adj.chunk(2)) / 2
        present = torch.zeros(len(est.counts), dtype=torch.bool)
        present[y[lab].unique()] = True
        rates = torch.where(present, est.rate_known, est.rate_novel)
        keep = torch.zeros_like(lab)
        if (~lab).any():
            keep[~lab] = self_balanced_mask(soft[~lab], rates, gen)
        soft_all = torch.where(lab[:, None], F.one_hot(y.clamp_min(0), soft.shape[1]).float(),
                               soft)
    sel = lab | keep
    zs = torch.cat([zz[sel] for zz in z.chunk(2)])
    parts["soft_supcon"] = soft_supcon(zs, soft_all[sel], temperature=cfg.tau_sup)
    loss_cl = ((1 - w) * parts["simclr"] + w / 2 * parts["supcon"]
               + w / 2 * parts["soft_supcon"])
    return {"loss": loss_ce + loss_cl, **parts}


def train(cfg: GCDConfig, data: GCDData, progress: bool = True
          ) -> tuple[GCDModel, list[dict[str, Any]], list[np.ndarray]]:
    """Train ``cfg.method``; return the model, the per-epoch log and the estimates made."""
    from medcl.contrastive.engine import seed_everything
    from medcl.util.clock import clock

    from .data import BatchAugment

    seed_everything(cfg.seed)
    size = (int(data.images.shape[2]), int(data.images.shape[3]))
    model = GCDModel(cfg.method, int(data.images.shape[1]), data.n_classes, cfg.width,
                     cfg.proj_dim)
    augment = BatchAugment(size, int(data.images.shape[1]), 2)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs, eta_min=cfg.lr * 1e-3)
    y_all = torch.as_tensor(data.labels)
    lab_all = torch.as_tensor(data.labelled)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(data.images)
    batch = min(cfg.batch_size, n)
    est: Estimate | None = None
    estimates: list[np.ndarray] = []
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        if cfg.method == "bacon" and epoch % cfg.est_every == 0:
            counts = estimate(model, data, cfg)
            estimates.append(counts)
            est = Estimate(counts, cfg)
        model.train()
        order = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        steps = 0
        for i in range(0, n - batch + 1, batch):
            idx = order[i:i + batch]
            y = torch.where(lab_all[idx], y_all[idx], torch.full_like(y_all[idx], -1))
            parts = _step(model, cfg, augment(data.images[idx]), y, lab_all[idx], epoch, est, gen)
            opt.zero_grad(set_to_none=True)
            parts["loss"].backward()
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            steps += 1
        sched.step()
        row = {"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()},
               "seconds": round(time.perf_counter() - start, 3)}
        history.append(row)
        if progress:
            values = " ".join(f"{k}={v:.4g}" for k, v in row.items()
                              if k not in ("epoch", "seconds"))
            print(f"gcd {cfg.method} epoch {epoch + 1}/{cfg.epochs} {values} (elapsed "
                  f"{clock(time.perf_counter() - start)})", file=sys.stderr, flush=True)
    model.eval()
    return model, history, estimates


def assign(model: GCDModel, images: Tensor, n_classes: int, train_labels: np.ndarray | None,
           seed: int) -> np.ndarray:
    """Cluster / class ids of ``images`` by the method's own rule (module docstring).

    ``train_labels``: class of the labelled images among ``images`` (``-1`` others), used by
    the GCD baseline's semi-supervised k-means; ``None`` falls back to plain k-means.
    """
    from sklearn.cluster import KMeans

    from medcl.contrastive.gcd import semi_supervised_kmeans

    if model.method == "simgcd":
        return model.predict(images).numpy()
    feats = model.features(images).numpy()
    if model.method == "gcd" and train_labels is not None and (train_labels >= 0).any():
        return semi_supervised_kmeans(feats, train_labels, n_classes, seed=seed)
    return KMeans(n_classes, n_init=5, random_state=seed).fit_predict(feats)


def score(model: GCDModel, data: GCDData, seed: int, unlabelled_only: bool = True
          ) -> dict[str, float]:
    """All / Old / New accuracy on the unlabelled images (or on all, for evaluation data)."""
    from medcl.contrastive.gcd import split_accuracy

    train_labels = data.train_labels()
    pred = assign(model, data.images, data.n_classes, train_labels, seed)
    m = ~data.labelled if unlabelled_only else np.ones(len(pred), dtype=bool)
    acc = split_accuracy(data.labels[m], pred[m], data.old_mask[m])
    return {"all": acc.all, "old": acc.old, "new": acc.new, "n_images": int(m.sum())}


def train_run(cfg: GCDConfig, out: Path, progress: bool = True) -> Path:
    """``medcl core gcd train``: check, train, score, write the run folder."""
    import pandas as pd

    from medcl.io import RunFolder

    from .gcd_data import prepare

    data = prepare(cfg.data, cfg.known, cfg.imbalance, cfg.label_fraction, cfg.seed)
    folder = RunFolder.create(out, overwrite=True)
    record = {"source": data.source, "classes": data.classes, "n_known": data.n_known,
              "n_images": len(data.images), "n_labelled": int(data.labelled.sum()),
              "channels": int(data.images.shape[1]), "height": int(data.images.shape[2]),
              "width": int(data.images.shape[3]), "notes": data.notes}
    folder.write_config(cfg, seed=cfg.seed, extra={"command": "medcl core gcd train",
                                                   "data_record": record})
    model, history, estimates = train(cfg, data, progress)
    folder.write_metrics(history)
    folder.save_model(model.state_dict())
    acc = score(model, data, cfg.seed)
    table = folder.write_table("accuracy", pd.DataFrame([{"method": cfg.method, **acc}]))
    true_counts = np.bincount(data.labels, minlength=data.n_classes)
    lines = [f"# {cfg.method} on {data.source}", "",
             f"Known classes {', '.join(data.classes[:data.n_known])}; novel "
             f"{', '.join(data.classes[data.n_known:])}. {len(data.images)} images, "
             f"{int(data.labelled.sum())} labelled; {cfg.epochs} epochs in "
             f"{history[-1]['seconds']:.0f} s; seed {cfg.seed}.", ""]
    lines += [f"- {note}" for note in data.notes]
    lines += ["", "All / Old / New accuracy (Hungarian-matched, one map over all classes) on "
              "the unlabelled training images:", "", table]
    if estimates:
        est = pd.DataFrame({"class": data.classes, "true_count": true_counts,
                            **{f"estimate_{k}": e for k, e in enumerate(estimates)}})
        lines += ["", "Class counts estimated by the contrastive branch (k-means), by "
                  "estimate (the first before training):", "",
                  folder.write_table("distribution", est, floatfmt=".0f")]
    from .figures import plot_loss

    plot_loss(folder, history, f"gcd {cfg.method}")
    lines += ["", "![training loss](loss.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


def load_model(run: Path) -> tuple[GCDConfig, dict[str, Any], GCDModel]:
    """Config, data record and model of a ``gcd train`` run folder."""
    from medcl.io import RunFolder
    from medcl.io.errors import RunFolderError

    folder = RunFolder(Path(run))
    record = folder.read_config()
    try:
        cfg = GCDConfig(**record["config"])
        info = record["data_record"]
        model = GCDModel(cfg.method, int(info["channels"]), len(info["classes"]), cfg.width,
                         cfg.proj_dim)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise RunFolderError("config.yaml was not written by `medcl core gcd train`",
                             path=folder.config_path,
                             fix="point --model to a gcd train run folder") from exc
    try:
        model.load_state_dict(folder.load_model())
    except RuntimeError as exc:
        raise RunFolderError("model.pt does not match the model of config.yaml",
                             path=folder.model_path, fix="retrain into this folder") from exc
    model.eval()
    return cfg, info, model


def evaluate_run(run: Path, data_spec: str | None, out: Path, imbalance: float | None,
                 seed: int | None) -> Path:
    """``medcl core gcd evaluate``: All / Old / New accuracy of a trained run on ``--data``.

    Every image of ``--data`` is scored (no labelled subset); the classes must be those of the
    run. The GCD baseline's semi-supervised k-means is clamped by the run's own labelled
    images, re-drawn from its config, which are clustered together with the new images.
    """
    import pandas as pd

    from medcl.io import RunFolder

    from .gcd_data import GCDData, load_images, prepare

    cfg, info, model = load_model(run)
    spec = data_spec or cfg.data
    imb = cfg.imbalance if imbalance is None else imbalance
    s = cfg.seed if seed is None else seed
    raw = load_images(spec, imb, s)
    assert raw.labels is not None and raw.classes is not None
    classes = info["classes"]
    missing = sorted(set(raw.classes) - set(classes))
    if missing:
        raise ConfigError(f"{raw.source} has class(es) {', '.join(missing)} that the run "
                          f"{run} was not trained with", fix=f"give data with classes among "
                          f"{', '.join(classes)}")
    if tuple(raw.images.shape[1:]) != (info["channels"], info["height"], info["width"]):
        raise ConfigError(f"{raw.source} has images {tuple(raw.images.shape[1:])}, the run "
                          f"was trained on {(info['channels'], info['height'], info['width'])}",
                          fix="give images of the training size and channels")
    labels = np.array([classes.index(raw.classes[k]) for k in raw.labels])
    ev = GCDData(raw.images, labels, np.zeros(len(labels), dtype=bool), classes,
                 int(info["n_known"]), raw.source, list(raw.notes))
    train_labels = np.full(len(labels), -1)
    images = ev.images
    if cfg.method == "gcd":
        tr = prepare(cfg.data, cfg.known, cfg.imbalance, cfg.label_fraction, cfg.seed)
        keep = tr.labelled
        images = torch.cat([tr.images[keep], ev.images])
        train_labels = np.concatenate([tr.labels[keep], train_labels])
    from medcl.contrastive.gcd import split_accuracy

    pred = assign(model, images, len(classes), train_labels, s)[len(images) - len(labels):]
    acc = split_accuracy(labels, pred, ev.old_mask)
    folder = RunFolder.create(out)
    folder.write_config({"model": str(run), "data": spec, "imbalance": imb, "seed": s},
                        seed=s, extra={"command": "medcl core gcd evaluate"})
    table = folder.write_table("accuracy", pd.DataFrame([{
        "method": cfg.method, "all": acc.all, "old": acc.old, "new": acc.new,
        "n_images": len(labels)}]))
    folder.write_report("\n".join([f"# {cfg.method} run {run} evaluated on {raw.source}", "",
                                   *[f"- {n}" for n in raw.notes], "",
                                   "All / Old / New accuracy on every image:", "", table]))
    return folder.report_path
