"""``medcl core itm``: image-text matching with a VSE++ baseline and DBL (Deep Boosting
Learning, Diao et al., IEEE TIP 2024).

- ``vse``: one branch, hardest-negative triplet loss (margin 0.2).
- ``dbl``: an anchor branch and a target branch of the same architecture. The anchor learns
  with the triplet loss; the target with the triplet loss plus the boost loss against the
  anchor's detached scores. Anchor variants of the authors' code: ``joint`` (OSS, both trained
  together: our default, the first setting of their scripts), ``ema`` (MSS, the anchor is a
  moving average of the target, decay 0.9995) and ``frozen`` (OAS, a previously trained VSE run
  given by ``--anchor-run``). Cooperative inference averages the two branches' scores.

Departures (CPU scale): a small CNN over raw images instead of precomputed Faster R-CNN region
features and SGRAF's similarity network; Adam at lr 2e-3 (the paper: 2e-4 over 20-40 epochs of
COCO/Flickr30K); one random caption per image per batch, as the authors' loaders do.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medcl.io.errors import ConfigError

from .t2i_data import TextImageSet, check_enough, load_text_images, split
from .t2i_train import (
    _progress,
    _read,
    _to_gan,
    data_record,
    device_of,
    pick_device,
    seed_all,
)

METHODS = ("vse", "dbl")
ANCHORS = ("joint", "ema", "frozen")
BOOSTS = ("rel", "abs")
ITM_METHOD = "itm"


@dataclass
class ITMConfig:
    """One matching run (``medcl core itm train``)."""

    data: str = "shapes"
    method: str = "dbl"
    anchor: str = "joint"
    anchor_run: str | None = None
    boost: str = "rel"
    margin: float = 0.2
    ema: float = 0.9995
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    dim: int = 64
    width: int = 16
    image_size: int = 64
    max_len: int = 18
    n_shapes: int = 800
    test_size: float = 0.2
    seed: int = 0

    def check(self) -> None:
        for name, value, allowed in (("--method", self.method, METHODS),
                                     ("--anchor", self.anchor, ANCHORS),
                                     ("--boost", self.boost, BOOSTS)):
            if value not in allowed:
                raise ConfigError(f"{name} {value!r} is not one of {', '.join(allowed)}")
        if self.method == "dbl" and self.anchor == "frozen" and not self.anchor_run:
            raise ConfigError("--anchor frozen needs a trained anchor",
                              fix="give --anchor-run RUN (a `medcl core itm train --method vse` "
                              "run on the same data)")


def _batch(model: nn.Module, vocab: Any, images: torch.Tensor, texts: list[str],
           max_len: int) -> torch.Tensor:
    ids, lengths, _ = vocab.batch(texts, max_len)
    dev = device_of(model)
    return model.scores(_to_gan(images, dev), ids.to(dev), lengths)


def train_itm(cfg: ITMConfig, data: TextImageSet, vocab: Any, anchor_model: nn.Module | None,
              *, progress: bool = True, budget_seconds: float | None = None
              ) -> tuple[nn.Module, nn.Module | None, list[dict[str, Any]], float]:
    """Train the target (and anchor) branch; returns ``(target, anchor, history, seconds)``."""
    from medcl.contrastive.text_image import (
        VSEModel,
        boost_abs_loss,
        boost_rel_loss,
        triplet_hardest_loss,
    )

    seed_all(cfg.seed)
    dev = pick_device()
    target = VSEModel(len(vocab), cfg.dim, cfg.width, 3, cfg.image_size)
    anchor: nn.Module | None = None
    if cfg.method == "dbl":
        if cfg.anchor == "frozen":
            anchor = anchor_model
        elif cfg.anchor == "ema":
            anchor = copy.deepcopy(target)
        else:
            anchor = VSEModel(len(vocab), cfg.dim, cfg.width, 3, cfg.image_size)
        if cfg.anchor != "joint":
            anchor.requires_grad_(False)
    target = target.to(dev)
    anchor = None if anchor is None else anchor.to(dev)
    params = list(target.parameters()) + (
        list(anchor.parameters()) if anchor is not None and cfg.anchor == "joint" else [])
    opt = torch.optim.Adam(params, lr=cfg.lr)
    boost = boost_rel_loss if cfg.boost == "rel" else boost_abs_loss
    caps = data.captions_of()
    rng = np.random.default_rng(cfg.seed)
    n = len(data.images)
    batch = min(cfg.batch_size, n)
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    epochs = cfg.epochs if budget_seconds is None else 10**6
    for epoch in range(epochs):
        if budget_seconds is not None and time.perf_counter() - start >= budget_seconds:
            break
        target.train()
        if anchor is not None:
            anchor.train(cfg.anchor == "joint")
        sums: dict[str, float] = {}
        steps = 0
        perm = rng.permutation(n)
        for s in range(0, n - batch + 1, batch):
            idx = perm[s:s + batch]
            texts = [data.captions[rng.choice(caps[i])] for i in idx]
            images = data.images[torch.as_tensor(idx)]
            s_t = _batch(target, vocab, images, texts, cfg.max_len)
            terms = {"triplet": triplet_hardest_loss(s_t, cfg.margin)}
            if anchor is not None:
                if cfg.anchor == "joint":
                    s_a = _batch(anchor, vocab, images, texts, cfg.max_len)
                    terms["anchor_triplet"] = triplet_hardest_loss(s_a, cfg.margin)
                else:
                    with torch.no_grad():
                        s_a = _batch(anchor, vocab, images, texts, cfg.max_len)
                terms["boost"] = boost(s_t, s_a.detach(), cfg.margin)
            loss = sum(terms.values())
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 2.0)
            opt.step()
            if anchor is not None and cfg.anchor == "ema":
                with torch.no_grad():
                    for pa, pt in zip(anchor.parameters(), target.parameters(), strict=True):
                        pa.mul_(cfg.ema).add_(pt, alpha=1 - cfg.ema)
                    for ba, bt in zip(anchor.buffers(), target.buffers(), strict=True):
                        ba.copy_(bt)  # batch-norm statistics follow the target
            for k, v in {**terms, "loss": loss}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            steps += 1
        row = {"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()},
               "seconds": time.perf_counter() - start}
        history.append(row)
        _progress(f"itm {cfg.method}", epoch, cfg.epochs if budget_seconds is None
                  else epoch + 1, row, start, progress)
    target.cpu().eval()
    if anchor is not None:
        anchor.cpu().eval()
    return target, anchor, history, time.perf_counter() - start


@torch.no_grad()
def score_matrix(model: nn.Module, vocab: Any, data: TextImageSet, max_len: int,
                 batch: int = 256) -> np.ndarray:
    """Cosine scores (N_images, N_captions) of one branch."""
    model.eval()
    dev = device_of(model)
    img = torch.cat([model.embed_images(_to_gan(data.images[i:i + batch], dev)).cpu()
                     for i in range(0, len(data.images), batch)])
    txt = []
    for i in range(0, len(data.captions), batch):
        ids, lengths, _ = vocab.batch(data.captions[i:i + batch], max_len)
        txt.append(model.embed_texts(ids.to(dev), lengths).cpu())
    return (img @ torch.cat(txt).t()).numpy()


def retrieval_table(target: nn.Module, anchor: nn.Module | None, vocab: Any,
                    data: TextImageSet, max_len: int, method: str):
    """R@1/5/10 both ways and rSum per branch; DBL adds the cooperative row (mean scores)."""
    import pandas as pd

    from medcl.contrastive.text_image import retrieval_recalls

    s_t = score_matrix(target, vocab, data, max_len)
    rows = [{"scores": "target" if anchor is not None else method,
             **retrieval_recalls(s_t, data.caption_image)}]
    if anchor is not None:
        s_a = score_matrix(anchor, vocab, data, max_len)
        rows.insert(0, {"scores": "anchor", **retrieval_recalls(s_a, data.caption_image)})
        rows.append({"scores": "cooperative (mean of both)",
                     **retrieval_recalls((s_a + s_t) / 2, data.caption_image)})
    return pd.DataFrame(rows)


def _state(target: nn.Module, anchor: nn.Module | None) -> dict[str, Any]:
    state = {f"target.{k}": v for k, v in target.state_dict().items()}
    if anchor is not None:
        state |= {f"anchor.{k}": v for k, v in anchor.state_dict().items()}
    return state


def load_itm(run: Path) -> tuple[nn.Module, nn.Module | None, Any, ITMConfig]:
    """Target branch, anchor branch (DBL) or ``None``, vocabulary and config of a run."""
    from medcl.contrastive.text_image import Vocab, VSEModel
    from medcl.io.errors import RunFolderError

    folder, record = _read(run, ITM_METHOD, "medcl core itm train")
    cfg = ITMConfig(**record["config"])
    vocab = Vocab(list(record["vocab"]))
    state = folder.load_model()
    branches = []
    for name in ("target", "anchor"):
        part = {k.removeprefix(f"{name}."): v for k, v in state.items()
                if k.startswith(f"{name}.")}
        if not part:
            branches.append(None)
            continue
        model = VSEModel(len(vocab), cfg.dim, cfg.width, 3, cfg.image_size)
        try:
            model.load_state_dict(part)
        except RuntimeError as exc:
            raise RunFolderError("model.pt does not match config.yaml",
                                 path=folder.model_path, fix="train again") from exc
        branches.append(model.eval())
    if branches[0] is None:
        raise RunFolderError("model.pt has no target branch", path=folder.model_path,
                             fix="train again")
    return branches[0], branches[1], vocab, cfg


def train_run(cfg: ITMConfig, out: Path, *, progress: bool = True) -> Path:
    """``medcl core itm train``: train on the training split; retrieval on the held-out
    images into ``retrieval.csv``/``report.md``."""
    from medcl.contrastive.text_image import Vocab
    from medcl.io import RunFolder

    cfg.check()
    data = load_text_images(cfg.data, cfg.image_size, cfg.seed, cfg.n_shapes)
    tr, te = split(data, cfg.test_size, cfg.seed)
    check_enough(data, len(tr), "training")
    anchor_model = None
    if cfg.method == "dbl" and cfg.anchor == "frozen":
        anchor_model, _, anchor_vocab, anchor_cfg = load_itm(Path(str(cfg.anchor_run)))
        vocab = anchor_vocab
        if (anchor_cfg.dim, anchor_cfg.width, anchor_cfg.image_size) != (
                cfg.dim, cfg.width, cfg.image_size):
            raise ConfigError("the --anchor-run model has another size (dim, width, image "
                              "size)", fix="train the anchor with the same settings")
    else:
        vocab = Vocab.build(data.subset(tr).captions)
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "command": "medcl core itm train", "method": ITM_METHOD, "vocab": vocab.words,
        "data_record": data_record(data)})
    target, anchor, history, seconds = train_itm(cfg, data.subset(tr), vocab, anchor_model,
                                                 progress=progress)
    folder.write_metrics(history)
    folder.save_model(_state(target, anchor))
    from .t2i_train import _plot

    keys = [k for k in ("loss", "triplet", "anchor_triplet", "boost") if k in history[-1]]
    _plot(folder, history, keys, f"itm {cfg.method}")
    what = ("VSE++ (hardest-negative triplet, margin 0.2)" if cfg.method == "vse" else
            f"DBL (anchor {cfg.anchor}, boost {cfg.boost}, margin {cfg.margin})")
    lines = [f"# itm {cfg.method} on {data.source}", "",
             f"{what}; {len(history)} epochs in {seconds:.0f} s on {len(tr)} training images; "
             f"seed {cfg.seed}.", ""]
    lines += [f"- {n}" for n in data.notes]
    if len(te) >= 2:
        table = folder.write_table("retrieval", retrieval_table(
            target, anchor, vocab, data.subset(te), cfg.max_len, cfg.method), floatfmt=".1f")
        lines += ["", f"Retrieval on the {len(te)} held-out images and their captions "
                  "(R@K in %, rSum their sum):", "", table]
    lines += ["", "![training loss](loss.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


def evaluate_run(model: Path, data_arg: str, out: Path, n_shapes: int = 400,
                 seed: int = 1000) -> Path:
    """``medcl core itm evaluate``: R@1/5/10 both ways and rSum on ``data_arg`` (``shapes``:
    a fresh set, seed 1000) as ``retrieval.csv`` and ``retrieval.md``."""
    from medcl.io import RunFolder
    from medcl.io.atomic import write_text

    target, anchor, vocab, cfg = load_itm(model)
    data = load_text_images(data_arg, cfg.image_size, seed, n_shapes)
    check_enough(data, len(data.images), "evaluation")
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config({"model": str(model), "data": data_arg}, seed=seed, extra={
        "command": "medcl core itm evaluate", "method": "itm-evaluate",
        "data_record": data_record(data)})
    table = folder.write_table("retrieval", retrieval_table(target, anchor, vocab, data,
                                                            cfg.max_len, cfg.method),
                               floatfmt=".1f")
    write_text(folder.root / "retrieval.md", table)
    lines = [f"# itm evaluation of {model} on {data.source}", "",
             f"{len(data.images)} images, {len(data.captions)} captions; R@K in %.", ""]
    lines += [f"- {n}" for n in data.notes] + ["", table]
    folder.write_report("\n".join(lines))
    return folder.report_path
