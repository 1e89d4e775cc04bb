"""The method registry of ``medcl core image``: name -> how to build heads, loss and step.

A :class:`Recipe` says which module of :mod:`medcl.contrastive` the method needs (imported
lazily: a method whose module is not installed is refused with one clear line), whether it needs
labels, its default number of views and temperature (the paper's), and a ``build`` function
returning the :class:`Parts` of one run: the projection head(s), the loss module and the
training step ``step(model, views, labels)``, plus optional per-epoch hooks. The maths lives in
:mod:`medcl.contrastive`; a recipe only wires it to images.

Two-view losses (NT-Xent, DCL, DCLW, AMCL, FT) given more than two views are averaged over every
pair of views (the "pairwise" multi-view baseline of arXiv 2507.06979, sec. 3); SupCon takes all
views at once (Khosla et al. 2020, eq. 2).

Where a recipe follows the authors and where it departs:

- every method shares one projection head shape (SimCLR's 2-layer MLP, ``feat -> feat ->
  proj_dim``; AMCL three of them), so ``compare`` varies the objective only;
- ``cacr``: the authors' defaults (one query + 4 positives = 5 views, tau+ = tau- = 1);
- ``amcl``: 3 heads over NT-Xent, temperatures in [0.1, 1], beta = 0.1 (the paper; the loss
  module lists its own choices);
- ``mv-infonce`` / ``mv-dhel``: tau = 0.5, 4 views by default (the paper studies M = 2..);
- ``swav``: Sinkhorn 3 x 0.05, tau = 0.1, prototypes normalised every step and frozen during
  the first epoch, as ``main_swav.py``; freezing is done by scoring with detached prototypes
  (no gradient reaches them, the same update as cancelling their gradient, which the engine's
  fused backward-and-step does not let us do); K = max(100, 10 x classes) prototypes instead of
  3000 (small sets); the queue (2 x batch features) joins at epoch 16 as the paper's epoch 15;
  multi-crop = 2 full-size + (views - 2) crops at 0.57 of the side (96/168);
- ``ft``: NT-Xent mode (in-batch negatives) at SimCLR's tau = 0.5, not the paper's MoCo
  setting (tau 0.07, 65536-entry queue), so that it differs from ``simclr`` by the feature
  transformations only; lambda ~ Beta(2, 2) + 1, mu ~ Beta(1.6, 1.6) per dimension;
- ``hydra``: 1/tau = 10, a class partner drawn per anchor among the batch's classes, the
  detached linear probe on the encoder features (its accuracy is logged per epoch).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from medcl.io.errors import ConfigError

__all__ = ["RECIPES", "Context", "Parts", "Recipe", "available", "get_recipe"]


@dataclass
class Context:
    """What a recipe may size its parts by."""

    feat_dim: int
    proj_dim: int
    views: int
    n_classes: int
    temperature: float
    epochs: int
    steps_per_epoch: int
    batch_size: int = 256


@dataclass
class Parts:
    """One run's method: head(s), loss module, training step and hooks.

    ``step(model, views, labels)`` returns the loss or a dict with ``"loss"`` (other scalars are
    logged per epoch); ``on_epoch(model, epoch)`` runs before each epoch (0-based);
    ``epoch_logs(model)`` returns scalars logged after each epoch (``metrics.csv``);
    ``report(model, folder)`` writes the method's own figures into a run folder and returns
    Markdown lines for its report.
    """

    head: nn.Module
    criterion: nn.Module
    step: Callable[..., Any]
    on_epoch: Callable[[nn.Module, int], None] | None = None
    epoch_logs: Callable[[nn.Module], dict[str, float]] | None = None
    report: Callable[[nn.Module, Any], list[str]] | None = None


@dataclass(frozen=True)
class Recipe:
    """How to train one method (see the module docstring)."""

    name: str
    paper: str
    module: str
    build: Callable[[Context], Parts]
    needs_labels: bool = False
    default_views: int = 2
    temperature: float | None = 0.5
    small_crops: bool = False
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def n_small(self, views: int) -> int:
        """Low-resolution crops among ``views`` (SwAV multi-crop: all but two)."""
        return max(0, views - 2) if self.small_crops else 0


# -- helpers ----------------------------------------------------------------------------------
def _projections(model: nn.Module, views: list[Tensor]) -> list[Tensor]:
    """Head outputs of each view (one head pass over all views of equal feature width)."""
    hs = model.features(views)
    z = model.head(torch.cat(hs))
    return list(z.chunk(len(views)))


def _pairwise(loss: Callable[[Tensor, Tensor], Tensor], zs: list[Tensor]) -> Tensor:
    """Mean of a two-view loss over every unordered pair of views."""
    terms = [loss(a, b) for a, b in itertools.combinations(zs, 2)]
    return torch.stack(terms).mean()


def _mlp(ctx: Context) -> nn.Module:
    from medcl.contrastive.heads import SimCLRHead

    return SimCLRHead(ctx.feat_dim, ctx.feat_dim, ctx.proj_dim)


def _pair_step(model: nn.Module, views: list[Tensor], labels: Tensor | None) -> Tensor:
    return _pairwise(model.criterion, _projections(model, views))


# -- the InfoNCE family already in the core ---------------------------------------------------
def _build_simclr(ctx: Context) -> Parts:
    from medcl.contrastive.losses import NTXentLoss

    return Parts(_mlp(ctx), NTXentLoss(ctx.temperature), _pair_step)


def _build_dcl(ctx: Context) -> Parts:
    from medcl.contrastive.losses import DCLLoss

    return Parts(_mlp(ctx), DCLLoss(ctx.temperature), _pair_step)


def _build_dclw(ctx: Context) -> Parts:
    from medcl.contrastive.losses import DCLWLoss

    return Parts(_mlp(ctx), DCLWLoss(ctx.temperature), _pair_step)


def _supcon_step(model: nn.Module, views: list[Tensor], labels: Tensor | None) -> Tensor:
    if labels is None:
        raise ValueError("supcon needs labels")
    return model.criterion(torch.stack(_projections(model, views), dim=1), labels)


def _build_supcon(ctx: Context) -> Parts:
    from medcl.contrastive.losses import SupConLoss

    return Parts(_mlp(ctx), SupConLoss(ctx.temperature), _supcon_step)


# -- the methods of issue 13 (modules in medcl.contrastive) -----------------------------------
def _cacr_step(model: nn.Module, views: list[Tensor], labels: Tensor | None) -> dict:
    return model.criterion(_projections(model, views), return_terms=True)


def _build_cacr(ctx: Context) -> Parts:
    from medcl.contrastive.losses import CACRLoss

    return Parts(_mlp(ctx), CACRLoss(), _cacr_step)


def _amcl_step(model: nn.Module, views: list[Tensor], labels: Tensor | None) -> dict:
    hs = model.features(views)
    zs = list(model.head(torch.cat(hs)).chunk(len(views), dim=1))  # each (C, N, D)
    outs = [model.criterion(a, b, labels) for a, b in itertools.combinations(zs, 2)]
    return {"loss": torch.stack([o["loss"] for o in outs]).mean(),
            "tau_mean": torch.stack([o["tau_mean"] for o in outs]).mean()}


def _build_amcl(ctx: Context) -> Parts:
    from medcl.contrastive.heads import MultiProjectionHeads
    from medcl.contrastive.losses import AMCLLoss

    heads = MultiProjectionHeads(ctx.feat_dim, n_heads=3, hidden_dim=ctx.feat_dim,
                                 out_dim=ctx.proj_dim)
    return Parts(heads, AMCLLoss(ctx.proj_dim, n_heads=3, base="ntxent"), _amcl_step)


def _mv_step(model: nn.Module, views: list[Tensor], labels: Tensor | None) -> Tensor:
    return model.criterion(_projections(model, views))


def _build_mv_infonce(ctx: Context) -> Parts:
    from medcl.contrastive.losses import MVInfoNCELoss

    return Parts(_mlp(ctx), MVInfoNCELoss(ctx.temperature), _mv_step)


def _build_mv_dhel(ctx: Context) -> Parts:
    from medcl.contrastive.losses import MVDHELLoss

    return Parts(_mlp(ctx), MVDHELLoss(ctx.temperature), _mv_step)


def _swav_step(model: nn.Module, views: list[Tensor], labels: Tensor | None) -> Tensor:
    import torch.nn.functional as F

    protos, queues = model.criterion["prototypes"], model.criterion["queues"]
    protos.normalize_()  # SwAV: prototypes back on the sphere before every step
    zs = _projections(model, views)
    epoch = int(model.epoch)
    if protos.frozen(epoch):  # no gradient reaches frozen prototypes (= cancel_gradients)
        scores = [F.linear(F.normalize(z, dim=1), protos.weight.detach()) for z in zs]
    else:
        scores = [protos(z) for z in zs]
    loss = model.criterion["loss"](scores[:2], scores[2:], queues.scores(protos, epoch))
    queues.push([z.detach() for z in zs[:2]])
    return loss


def _build_swav(ctx: Context) -> Parts:
    from medcl.contrastive.losses import SwAVLoss
    from medcl.contrastive.prototypes import Prototypes, SwAVQueues

    criterion = nn.ModuleDict({
        "loss": SwAVLoss(ctx.temperature),
        "prototypes": Prototypes(ctx.proj_dim, max(100, 10 * ctx.n_classes), frozen_epochs=1),
        "queues": SwAVQueues(2, 2 * ctx.batch_size, ctx.proj_dim, start_epoch=15)})
    return Parts(_mlp(ctx), criterion, _swav_step)


FT_SCORES_PER_EPOCH = 8192


def _ft_step(model: nn.Module, views: list[Tensor], labels: Tensor | None) -> dict:
    zs = _projections(model, views)
    outs = [model.criterion(a, b) for a, b in itertools.combinations(zs, 2)]
    pos = torch.cat([o["pos_scores"] for o in outs])
    neg = torch.cat([o["neg_scores_mean"] for o in outs])
    log = model.__dict__.setdefault("ft_scores", {})
    seen = log.setdefault(int(model.epoch), ([], []))
    if sum(len(t) for t in seen[0]) < FT_SCORES_PER_EPOCH:  # a sample is enough for a histogram
        seen[0].append(pos.float().cpu())
        seen[1].append(neg.float().cpu())
    return {"loss": torch.stack([o["loss"] for o in outs]).mean(), "pos_score": pos.mean(),
            "neg_score": neg.mean(),
            "neg_score_var": torch.cat([o["neg_scores_var"] for o in outs]).mean()}


def _ft_report(model: nn.Module, folder: Any) -> list[str]:
    """Histograms of positive and (per-anchor mean) negative cosine scores per epoch, as the
    paper's figures (Zhu et al. 2021, fig. 2-4): ``ft_scores.png``."""
    log = model.__dict__.get("ft_scores") or {}
    if not log:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = sorted(log)
    shown = sorted({epochs[0], epochs[len(epochs) // 2], epochs[-1]})
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for e in shown:
        pos, neg = (torch.cat(part).numpy() for part in log[e])
        axes[0].hist(pos, bins=40, range=(-1, 1), histtype="step", label=f"epoch {e + 1}")
        axes[1].hist(neg, bins=40, range=(-1, 1), histtype="step", label=f"epoch {e + 1}")
    axes[0].set_title("positive scores")
    axes[1].set_title("mean negative score per anchor")
    for ax in axes:
        ax.set_xlabel("cosine")
        ax.legend(fontsize=7)
    fig.tight_layout()
    folder.save_figure("ft_scores", fig)
    plt.close(fig)
    return ["", "Feature-transformation score distributions (epoch means in metrics.csv: "
            "pos_score, neg_score, neg_score_var):", "", "![FT scores](ft_scores.png)"]


def _build_ft(ctx: Context) -> Parts:
    from medcl.contrastive.losses import FeatureTransformLoss

    return Parts(_mlp(ctx), FeatureTransformLoss(ctx.temperature), _ft_step,
                 report=_ft_report)


def _hydra_step(model: nn.Module, views: list[Tensor], labels: Tensor | None) -> dict:
    if labels is None:
        raise ValueError("hydra needs labels")
    h = torch.cat(model.features(views))
    out = model.criterion(model.head(h), labels.repeat(len(views)), h=h)
    return {k: v for k, v in out.items() if v.numel() == 1}


def _build_hydra(ctx: Context) -> Parts:
    from medcl.contrastive.losses import HydraLoss

    loss = HydraLoss(max(2, ctx.n_classes), ctx.proj_dim, temperature=ctx.temperature,
                     probe_dim=ctx.feat_dim)
    return Parts(_mlp(ctx), loss, _hydra_step)


_LOSSES = "medcl.contrastive.losses"

RECIPES: dict[str, Recipe] = {
    r.name: r for r in [
        Recipe("simclr", "Chen et al. 2020, SimCLR (NT-Xent, eq. 1)", f"{_LOSSES}.ntxent",
               _build_simclr, temperature=0.5),
        Recipe("dcl", "Yeh et al. 2022, Decoupled Contrastive Learning (eq. 6)",
               f"{_LOSSES}.dcl", _build_dcl, temperature=0.1),
        Recipe("dclw", "Yeh et al. 2022, DCL with vMF-weighted positives (eq. 7)",
               f"{_LOSSES}.dcl", _build_dclw, temperature=0.1),
        Recipe("supcon", "Khosla et al. 2020, Supervised Contrastive Learning (eq. 2)",
               f"{_LOSSES}.supcon", _build_supcon, needs_labels=True, temperature=0.1),
        Recipe("cacr", "Zheng et al. 2021, Contrastive Attraction and Contrastive Repulsion "
               "(tau+ = tau- = 1, 4 positives per query)", f"{_LOSSES}.cacr", _build_cacr,
               default_views=5, temperature=None),
        Recipe("amcl", "Wang et al. 2024, Adaptive Multi-head Contrastive Learning over NT-Xent "
               "(3 heads, pairwise temperature in [0.1, 1], beta 0.1)", f"{_LOSSES}.amcl",
               _build_amcl, temperature=None),
        Recipe("mv-infonce", "Koromilas et al. 2025, MV-InfoNCE (arXiv 2507.06979)",
               f"{_LOSSES}.multiview", _build_mv_infonce, default_views=4, temperature=0.5),
        Recipe("mv-dhel", "Koromilas et al. 2025, MV-DHEL (arXiv 2507.06979)",
               f"{_LOSSES}.multiview", _build_mv_dhel, default_views=4, temperature=0.5),
        Recipe("swav", "Caron et al. 2020, SwAV (Sinkhorn 3 x 0.05, prototypes frozen for "
               "epoch 1, queue of 2 x batch from epoch 16)", f"{_LOSSES}.swav", _build_swav,
               default_views=6, temperature=0.1, small_crops=True,
               notes="views = 2 large + (views - 2) small crops"),
        Recipe("ft", "Zhu et al. 2021, Feature Transformation on NT-Xent (lambda ~ Beta(2,2)+1, "
               "mu ~ Beta(1.6,1.6))", f"{_LOSSES}.ft", _build_ft, temperature=0.5,
               notes="NT-Xent mode (in-batch negatives) at SimCLR's temperature 0.5"),
        Recipe("hydra", "Wang et al. 2024, Hydra / SimLAP class-pair gates (arXiv 2410.18200)",
               f"{_LOSSES}.hydra", _build_hydra, needs_labels=True, temperature=0.1),
    ]
}


def available() -> list[str]:
    """Names of the methods whose core module is installed."""
    return [name for name, r in RECIPES.items() if _module_present(r.module)]


def _module_present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def get_recipe(name: str, *, flag: str = "--method") -> Recipe:
    """The recipe of ``name``, refusing unknown methods and methods whose module is missing."""
    if name not in RECIPES:
        raise ConfigError(f"{flag} {name!r} is not a known method",
                          fix=f"choose among {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    if not _module_present(recipe.module):
        raise ConfigError(f"{flag} {name!r} needs {recipe.module}, which this installation "
                          "does not have yet",
                          fix=f"choose among the available methods: {', '.join(available())}")
    try:
        importlib.import_module(recipe.module)
    except ImportError as exc:
        raise ConfigError(f"{flag} {name!r}: {recipe.module} cannot be imported ({exc})",
                          fix=f"choose among {', '.join(available())}") from exc
    return recipe
