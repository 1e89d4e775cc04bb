"""``medcl core rec train``: SASRec, CL4SRec or MCLRec on an interaction log.

- ``sasrec``: next-item cross-entropy over the whole catalogue (Kang & McAuley 2018, with the
  full-softmax loss of RecBole's ``loss_type: CE``).
- ``cl4srec``: plus ``lmd`` times the InfoNCE of two random augmentations of each training
  sequence (Xie et al., ICDE 2022, eq. 9; ``lmd = 0.1``).
- ``mclrec``: plus MCLRec's learnable augmenters and its three-step meta-optimisation
  (Qin et al., SIGIR 2023; :mod:`medcl.contrastive.sequences.rec.meta`).

Each epoch is scored on the validation targets (full ranking); the weights of the best
validation NDCG@10 are kept (MCLRec selects by validation MRR@10 with early stopping; we keep the
best epoch without stopping early) and scored once on the test targets.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from medcl.io.errors import ConfigError

from .rec_data import SynthSpec

METHODS = ("sasrec", "cl4srec", "mclrec")
CL_WEIGHT = {"sasrec": 0.0, "cl4srec": 0.1, "mclrec": 0.03}


@dataclass
class RecConfig:
    """One training run of ``medcl core rec train``; defaults are MCLRec's (``MCLRec.yaml``,
    ``seq.yaml`` and the authors' scripts) except ``epochs`` (theirs: 100 with early stopping).

    ``cl_weight`` is lambda (CL4SRec's InfoNCE weight; MCLRec's L_cl,1 weight), ``None``: the
    method's default (cl4srec 0.1, mclrec 0.03). ``beta`` and ``gamma`` weight MCLRec's
    L_cl,2 and regulariser; ``second_order`` differentiates the augmenter step through the
    look-ahead encoder update. ``synth_*`` describe ``--data synth``.
    """

    method: str = "sasrec"
    data: str = "synth"
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    max_len: int = 50
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    inner: int = 256
    dropout: float = 0.5
    attn_dropout: float = 0.5
    cl_weight: float | None = None
    beta: float = 0.1
    gamma: float = 0.1
    temperature: float = 1.0
    crop_keep: float = 0.5
    mask_ratio: float = 0.5
    reorder_ratio: float = 0.8
    second_order: bool = True
    seed: int = 0
    synth_users: int = 1000
    synth_items: int = 200

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method!r} is not known",
                              fix=f"choose one of {', '.join(METHODS)}")
        for flag, value, low in [("--epochs", self.epochs, 1), ("--batch-size", self.batch_size,
                                 2), ("--max-len", self.max_len, 1), ("--hidden", self.hidden, 2),
                                 ("--layers", self.layers, 1), ("--heads", self.heads, 1),
                                 ("--synth-users", self.synth_users, 3),
                                 ("--synth-items", self.synth_items, 10)]:
            if value < low:
                raise ConfigError(f"{flag} {value} is too small", fix=f"give {flag} >= {low}")
        if self.hidden % self.heads:
            raise ConfigError(f"--hidden {self.hidden} is not divisible by --heads {self.heads}",
                              fix="give a hidden size that is a multiple of the heads")
        if self.lr <= 0 or self.temperature <= 0:
            raise ConfigError("--lr and --temperature must be > 0", fix="give e.g. --lr 1e-3")
        for flag, value in [("--dropout", self.dropout), ("--crop-keep", self.crop_keep),
                            ("--mask-ratio", self.mask_ratio),
                            ("--reorder-ratio", self.reorder_ratio)]:
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{flag} {value} is not in [0, 1]", fix=f"give {flag} 0.5")

    def resolved(self) -> RecConfig:
        return replace(self, cl_weight=CL_WEIGHT[self.method] if self.cl_weight is None
                       else self.cl_weight)

    def synth_spec(self) -> SynthSpec:
        return SynthSpec(n_users=self.synth_users, n_items=self.synth_items, seed=self.seed)


def load_sequences(data: str, cfg: RecConfig, vocabulary: list[str] | None = None):
    """``(Sequences, SynthTruth or None)`` of ``--data`` (``synth`` or a ``.inter`` file)."""
    from .rec_data import read_inter, synth_interactions, to_sequences

    if data == "synth":
        inter, truth = synth_interactions(cfg.synth_spec())
    else:
        inter, truth = read_inter(data), None
    seqs = to_sequences(inter, vocabulary)
    if not seqs.seqs:
        raise ConfigError(f"{inter.source} has no user with two or more interactions",
                          fix="give a log with at least two interactions per user")
    return seqs, truth


def build(cfg: RecConfig, n_items: int):
    """The SASRec encoder and (for mclrec) the two augmenters of ``cfg``."""
    import torch

    from medcl.contrastive.sequences.rec.losses import Augmenter
    from medcl.contrastive.sequences.rec.sasrec import SASRec

    encoder = SASRec(n_items, cfg.max_len, cfg.hidden, cfg.layers, cfg.heads, cfg.inner,
                     cfg.dropout, cfg.attn_dropout)
    augmenters = torch.nn.ModuleList([Augmenter(cfg.hidden), Augmenter(cfg.hidden)])
    return encoder, augmenters


def score(encoder, inputs: list[list[int]], targets: np.ndarray, max_len: int,
          batch: int = 512) -> np.ndarray:
    """0-based full-ranking ranks of ``targets`` (item ids) given histories ``inputs``."""
    import torch

    from medcl.contrastive.sequences.rec.metrics import target_ranks

    from .rec_data import pad_left

    encoder.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(inputs), batch):
            x = pad_left(inputs[s:s + batch], max_len)
            logits = encoder.item_logits(encoder(x))
            y = torch.as_tensor(targets[s:s + batch]) - 1
            out.append(target_ranks(logits, y).numpy())
    encoder.train()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


@dataclass
class Trained:
    encoder: Any
    augmenters: Any
    history: list[dict[str, Any]]
    seconds: float
    step_seconds: float
    best_epoch: int


def train(cfg: RecConfig, seqs, split, *, progress: bool = True) -> Trained:
    """Train a resolved ``cfg`` on a :class:`~medcl.core.rec_data.Split`."""
    import torch
    import torch.nn.functional as F

    from medcl.contrastive.engine import seed_everything
    from medcl.contrastive.sequences.rec.augment import AugmentRatios, two_views
    from medcl.contrastive.sequences.rec.losses import sequence_info_nce
    from medcl.contrastive.sequences.rec.meta import (
        MCLRecWeights,
        augmenter_objective,
        encoder_objective,
        mclrec_step,
    )
    from medcl.contrastive.sequences.rec.metrics import hit_ndcg
    from medcl.util.clock import clock

    from .rec_data import pad_left

    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    encoder, augmenters = build(cfg, seqs.n_items)
    enc_opt = torch.optim.Adam(encoder.parameters(), lr=cfg.lr)
    aug_opt = torch.optim.Adam(augmenters.parameters(), lr=cfg.lr)
    ratios = AugmentRatios(cfg.crop_keep, cfg.mask_ratio, cfg.reorder_ratio)
    weights = MCLRecWeights(lmd=float(cfg.cl_weight or 0.0), beta=cfg.beta, gamma=cfg.gamma,
                            temperature=cfg.temperature)
    n = len(split.train_inputs)
    if n < 2:
        raise ConfigError(f"the data give {n} training example(s)",
                          fix="give users with three or more interactions")
    batch = min(cfg.batch_size, n)
    history: list[dict[str, Any]] = []
    best, best_state, best_epoch = -1.0, None, 0
    start = time.perf_counter()
    step_time, steps = 0.0, 0
    for epoch in range(cfg.epochs):
        order = rng.permutation(n)
        losses, aug_losses = [], []
        for s in range(0, n - batch + 1, batch):
            t0 = time.perf_counter()
            idx = order[s:s + batch]
            inputs = [split.train_inputs[i] for i in idx]
            y = torch.as_tensor(split.train_targets[idx]) - 1
            if cfg.method == "sasrec":
                loss = F.cross_entropy(encoder.item_logits(encoder(pad_left(inputs, cfg.max_len))),
                                       y)
                enc_opt.zero_grad(set_to_none=True)
                loss.backward()
                enc_opt.step()
                losses.append(float(loss.detach()))
            else:
                v1, v2 = two_views(inputs, rng, encoder.mask_token, ratios)
                x = pad_left(inputs + v1 + v2, cfg.max_len)
                b = len(inputs)
                if cfg.method == "cl4srec":
                    h = encoder(x)
                    loss = F.cross_entropy(encoder.item_logits(h[:b]), y) + float(
                        cfg.cl_weight) * sequence_info_nce(h[b:2 * b], h[2 * b:],
                                                           cfg.temperature)
                    enc_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    enc_opt.step()
                    losses.append(float(loss.detach()))
                else:
                    xv = x[b:]

                    def encoder_loss(x=x, b=b, y=y):
                        h = encoder(x)
                        h1, h2 = h[b:2 * b], h[2 * b:]
                        return encoder_objective(encoder.item_logits(h[:b]), y, h1, h2,
                                                 augmenters[0](h1), augmenters[1](h2), weights)

                    def augmenter_loss(encode, xv=xv, b=b):
                        h = encode(xv)
                        h1, h2 = h[:b], h[b:]
                        return augmenter_objective(h1, h2, augmenters[0](h1),
                                                   augmenters[1](h2), weights)

                    out = mclrec_step(encoder, augmenters, enc_opt, aug_opt, encoder_loss,
                                      augmenter_loss, alpha=cfg.lr,
                                      second_order=cfg.second_order)
                    losses.append(out["loss"])
                    aug_losses.append(out["aug_loss"])
            step_time += time.perf_counter() - t0
            steps += 1
        row: dict[str, Any] = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
        if aug_losses:
            row["augmenter_loss"] = float(np.mean(aug_losses))
        if split.valid_inputs:
            m = hit_ndcg(torch.as_tensor(score(encoder, split.valid_inputs, split.valid_targets,
                                               cfg.max_len)), ks=(10,))
            row.update({"valid_HR@10": m["HR@10"], "valid_NDCG@10": m["NDCG@10"]})
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        current = row.get("valid_NDCG@10", -row["loss"])
        if current > best:
            best, best_epoch = current, epoch + 1
            best_state = copy.deepcopy(encoder.state_dict())
        if progress:
            values = " ".join(f"{k}={v:.4g}" for k, v in row.items()
                              if k not in ("epoch", "seconds"))
            print(f"{cfg.method} epoch {epoch + 1}/{cfg.epochs} {values} (elapsed "
                  f"{clock(time.perf_counter() - start)})", file=sys.stderr, flush=True)
    encoder.load_state_dict(best_state)
    encoder.eval()
    return Trained(encoder, augmenters, history, time.perf_counter() - start,
                   step_time / max(steps, 1), best_epoch)


def metrics_table(ranks: np.ndarray, label: str) -> dict[str, Any]:
    import torch

    from medcl.contrastive.sequences.rec.metrics import hit_ndcg

    return {"model": label, "users": len(ranks), **hit_ndcg(torch.as_tensor(ranks))}


def data_record(seqs, cfg: RecConfig) -> dict[str, Any]:
    return {"source": cfg.data, "users": len(seqs.users), "items": seqs.n_items,
            "interactions": int(sum(len(s) for s in seqs.seqs)),
            "skipped_single_interaction_users": seqs.skipped_single, "notes": seqs.notes}


def train_run(cfg: RecConfig, out: Path, *, progress: bool = True) -> Path:
    """``medcl core rec train``: check the data, then train into ``out``.

    ``out`` gets ``config.yaml``, ``items.csv`` (the vocabulary), ``metrics.csv`` (per epoch),
    ``model.pt`` (encoder and augmenters), ``test.csv``, ``loss.png`` and ``report.md``.
    """
    import pandas as pd

    from medcl.io import RunFolder, write_csv

    from .rec_data import leave_one_out, oracle_ranks

    cfg = cfg.resolved()
    seqs, truth = load_sequences(cfg.data, cfg)
    for note in seqs.notes:
        print(f"note: {note}", file=sys.stderr, flush=True)
    split = leave_one_out(seqs.seqs, cfg.max_len)
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "command": "medcl core rec train", "data_record": data_record(seqs, cfg)})
    write_csv(folder.root / "items.csv", pd.DataFrame({"id": np.arange(1, seqs.n_items + 1),
                                                       "item": seqs.items}))
    trained = train(cfg, seqs, split, progress=progress)
    folder.write_metrics(trained.history)
    state = {**{f"encoder.{k}": v for k, v in trained.encoder.state_dict().items()},
             **{f"augmenters.{k}": v for k, v in trained.augmenters.state_dict().items()}}
    folder.save_model(state)
    ranks = score(trained.encoder, split.test_inputs, split.test_targets, cfg.max_len)
    rows = [metrics_table(ranks, cfg.method)]
    if truth is not None:
        rows.append(metrics_table(oracle_ranks(truth, seqs, split.test_users, split.test_inputs,
                                               split.test_targets, cfg.seed),
                                  "oracle (true next-item probabilities)"))
    table = folder.write_table("test", pd.DataFrame(rows), floatfmt=".4f")
    _plot(folder, trained.history, cfg.method)
    lines = [f"# {cfg.method} on {cfg.data}", "",
             f"{len(seqs.users)} users, {seqs.n_items} items; {len(split.train_inputs)} training "
             f"examples; SASRec {cfg.layers} layers x {cfg.hidden}, max length {cfg.max_len}; "
             f"{cfg.epochs} epochs in {trained.seconds:.0f} s "
             f"({1000 * trained.step_seconds:.1f} ms per step); best validation NDCG@10 at "
             f"epoch {trained.best_epoch} (those weights are kept); seed {cfg.seed}.", ""]
    lines += [f"- {note}" for note in seqs.notes]
    lines += ["", "Test (last item of each user, full ranking over all items):", "", table,
              "![training loss and validation NDCG@10](loss.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


def _plot(folder: Any, history: list[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    epochs = [r["epoch"] for r in history]
    ax[0].plot(epochs, [r["loss"] for r in history], marker="o", ms=3)
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("training loss")
    if "valid_NDCG@10" in history[0]:
        ax[1].plot(epochs, [r["valid_NDCG@10"] for r in history], marker="o", ms=3)
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("validation NDCG@10")
    fig.suptitle(title)
    fig.tight_layout()
    folder.save_figure("loss", fig)
    plt.close(fig)
