"""MVCNet training on the core engine: cross-entropy on every view plus cross-view and
cross-model contrast (Wang et al. 2025, "MVCNet: Multi-View Contrastive Network for Motor Imagery
Classification", sec. 3.4, eq. 8-11: L = L_CE + lambda1 L_CVC + lambda2 L_CMC)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .config import MVCNetConfig


class MVCNetObjective(nn.Module):
    """The loss of one batch given the model's outputs on the raw trials and their views.

    Wang et al. 2025, sec. 3.4, eq. 8-11: ``L = L_CE + lambda1 L_CVC + lambda2 L_CMC`` with

    - ``ce``: cross-entropy of the classifier on the raw batch and on every view, summed (a
      reflected view carries its swapped labels);
    - ``cvc``: cross-view contrast (:func:`cross_view_contrast`): for each view ``k``, NT-Xent
      between the ``2B`` rows ``[cnn_0 ; proj_0]`` of the raw batch and ``[cnn_k ; proj_k]`` of
      view ``k`` (CNN and Transformer rows stacked along the *batch* axis), averaged over the
      views;
    - ``cmc``: cross-model contrast, NT-Xent between the CNN features and the Transformer
      projections of the raw batch and all views stacked (``(1 + V) B`` rows each);
    - ``fused_ce`` (ours, not in the paper): cross-entropy of the fused head
      (``out["fused_logits"]``, on the branches' features with their gradients stopped) on the
      raw batch and every view, summed like ``ce``. It is added to ``loss`` so that one backward
      pass trains that head, and reaches no other parameter: the network's gradients are those
      of the authors' ``L``. Absent ``"fused_logits"``, it is zero.

    NT-Xent is the core's :class:`medcl.contrastive.losses.NTXentLoss` (cosine similarity,
    temperature ``tau``, mean over anchors), which is the authors' ``NTXentLoss`` (summed
    cross-entropy over the ``2N`` anchors divided by ``2N``).

    Paper vs code
    -------------
    The paper (sec. 3.4) states the cross-view term on the representations of both branches
    without saying how they are joined; the authors' code (``MVCNet_CO.py``:
    ``torch.cat((features_source, z_raw))``, NT-Xent built with ``batch_size = 2 * b_s``) stacks
    the CNN features and the Transformer projections along the batch axis. We follow the code:
    anchor ``cnn_0[i]``'s positive is ``cnn_k[i]`` (and ``proj_0[i]``'s is ``proj_k[i]``); every
    other row of the ``4B`` — including the same trial's other branch — is a negative. Before
    issue 11 we concatenated along the feature axis (one ``2F`` vector per trial, ``2B - 2``
    negatives); that is not what the authors ran. Where we depart from their code: the raw batch
    and its views go through the network as one stacked batch (:func:`multiview_step`), so batch
    norm sees all ``(1 + V) B`` trials at once, where the authors call the CNN four times.
    """

    def __init__(self, temperature: float = 0.2, lambda_cvc: float = 0.1,
                 lambda_cmc: float = 0.1) -> None:
        super().__init__()
        from medcl.contrastive.losses import NTXentLoss

        self.ntxent = NTXentLoss(temperature)
        self.lambda_cvc, self.lambda_cmc = lambda_cvc, lambda_cmc

    def forward(self, out: dict[str, Tensor], labels: Tensor, n_views: int) -> dict[str, Tensor]:
        """Losses of one batch.

        Parameters
        ----------
        out : dict
            Model outputs on ``(1 + n_views) * B`` stacked trials (raw first): ``"logits"``
            ``((1 + V) B, K)``, ``"cnn"`` and ``"proj"`` ``((1 + V) B, F)``.
        labels : Tensor, shape ((1 + V) B,)
            The matching labels.
        n_views : int
            ``V``.

        Returns
        -------
        dict
            ``"loss"`` (with gradient) and the detached terms ``"ce"``, ``"cvc"``, ``"cmc"``,
            ``"fused_ce"``.
        """
        chunks = 1 + n_views

        def summed_ce(logits: Tensor) -> Tensor:
            return sum(F.cross_entropy(lg, yy) for lg, yy in
                       zip(logits.chunk(chunks), labels.chunk(chunks), strict=True))

        ce = summed_ce(out["logits"])
        fused_ce = summed_ce(out["fused_logits"]) if "fused_logits" in out else ce.new_zeros(())
        if n_views:
            cvc = cross_view_contrast(out["cnn"], out["proj"], n_views, self.ntxent)
        else:
            cvc = ce.new_zeros(())
        cmc = self.ntxent(out["cnn"], out["proj"])
        loss = ce + self.lambda_cvc * cvc + self.lambda_cmc * cmc + fused_ce
        return {"loss": loss, "ce": ce.detach(), "cvc": cvc.detach(), "cmc": cmc.detach(),
                "fused_ce": fused_ce.detach()}


def cross_view_contrast(cnn: Tensor, proj: Tensor, n_views: int, ntxent: nn.Module) -> Tensor:
    """MVCNet's cross-view contrastive loss as the authors compute it (Wang et al. 2025, eq. 9;
    ``MVCNet_CO.py``).

    Parameters
    ----------
    cnn, proj : Tensor, shape ((1 + V) B, F)
        CNN features and Transformer projections of the raw batch followed by its ``V`` views.
    n_views : int
        ``V >= 1``.
    ntxent : nn.Module
        ``ntxent(a, b)`` — NT-Xent between two ``(N, F)`` views of ``N`` items
        (:class:`medcl.contrastive.losses.NTXentLoss`).

    Returns
    -------
    Tensor
        ``(1 / V) sum_k NTXent([cnn_0 ; proj_0], [cnn_k ; proj_k])`` with the branches stacked
        along the batch axis (``2B`` items per view, ``4B`` anchors per term).
    """
    chunks = 1 + n_views
    if cnn.shape != proj.shape or cnn.shape[0] % chunks:
        raise ValueError(f"cnn {tuple(cnn.shape)} and proj {tuple(proj.shape)} must be equal and "
                         f"split into {chunks} chunks")
    rep = torch.stack([cnn.unflatten(0, (chunks, -1)), proj.unflatten(0, (chunks, -1))], 1)
    rep = rep.flatten(1, 2)  # (1 + V, 2B, F): [cnn_k ; proj_k] per chunk
    return sum(ntxent(rep[0], rep[k]) for k in range(1, chunks)) / n_views


def multiview_step(net: nn.Module, views, objective: MVCNetObjective, x: Tensor, y: Tensor, *,
                   channel_maps: list | None = None) -> dict[str, Tensor]:
    """The losses of one training batch ``x: (B, C, T)``, ``y: (B,)``.

    The raw batch and all its views (``views``: a :class:`~mvcnet.views.ViewPipeline`) go
    through ``net`` as one stacked batch; ``channel_maps`` (``views.channel_maps(C)``) lets the
    Transformer derive the input projection of the sign-flipped and channel-reflected views from
    the raw trials' (same outputs, less work).
    """
    pairs = views(x, y)
    xs = torch.cat([x] + [v for v, _ in pairs])
    ys = torch.cat([y] + [t for _, t in pairs])
    return objective(net(xs, channel_maps=channel_maps), ys, len(pairs))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps of one epoch over ``n`` trials: :func:`make_loader`'s rule.

    The authors keep the last partial batch (``DataLoader(drop_last=False)`` in
    ``utils/utils.py``) and skip a batch of a single trial (``if inputs_source.size(0) == 1:
    continue`` in ``MVCNet_CO.py``: batch norm needs two); so do we, for MVCNet and every
    network of the harness: ``ceil(n / b)`` batches of ``b = min(batch_size, n)``, less one
    when the last holds exactly one trial. 116 trials in batches of 64: 2 steps; 129: 2 (the
    129th trial waits for another epoch's shuffle).
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    batch = min(batch_size, n)
    return n // batch if n % batch == 1 and n > 1 else -(-n // batch)


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = True,
                generator: torch.Generator | None = None) -> DataLoader:
    """The training loader of MVCNet and the harness's networks: batches of
    ``min(batch_size, len(dataset))``, the last partial batch kept unless it holds a single
    trial (see :func:`steps_per_epoch`, which ``len(loader)`` equals)."""
    n = len(dataset)
    batch = min(batch_size, n)
    return DataLoader(dataset, batch_size=batch, shuffle=shuffle, generator=generator,
                      drop_last=n > 1 and n % batch == 1)


MAX_PROJECTOR_WEIGHTS = 200_000_000


def model_sizes(cfg: MVCNetConfig, n_times: int, sfreq: float | None = None) -> tuple[int, int]:
    """``(pool, trans_hidden)`` of the network ``cfg`` builds for ``n_times``-sample trials.

    ``cfg.pool`` (or, when ``None``, the authors' value for the rate:
    :func:`medcl.mvcnet.model.authors_pool`, which needs ``sfreq``) and ``cfg.trans_hidden`` (or,
    when ``None``, four times the feature size ``n_filters * (n_times // pool)``, as the authors:
    2048 for 1001 samples at 250 Hz, 5120 for 2561 at 512 Hz).
    """
    from .model import authors_pool

    pool = getattr(cfg, "pool", 125)
    if pool is None:
        if sfreq is None:
            raise ValueError("pool=None (the authors' pooling for the rate) needs sfreq")
        pool = authors_pool(sfreq)
    hidden = getattr(cfg, "trans_hidden", None)
    if hidden is None:
        hidden = 4 * int(cfg.n_filters) * (int(n_times) // int(pool))
    return int(pool), int(hidden)


def check_model_size(cfg: MVCNetConfig, n_chans: int, n_times: int,
                     sfreq: float | None = None) -> None:
    """A :class:`medcl.io.ConfigError` when the Transformer projector (``n_chans * n_times`` inputs
    to ``trans_hidden``) would exceed :data:`MAX_PROJECTOR_WEIGHTS` weights (800 MB in float32,
    several times that with gradients and Adam): refuse before running out of memory.
    ``sfreq`` is needed when ``cfg.pool`` is ``None`` (see :func:`model_sizes`)."""
    from medcl.io import ConfigError

    _, hidden = model_sizes(cfg, n_times, sfreq)
    weights = n_chans * n_times * hidden
    if weights > MAX_PROJECTOR_WEIGHTS:
        raise ConfigError(
            f"the Transformer projector would have {weights / 1e6:.0f} M weights ({n_chans} "
            f"channels x {n_times} samples x {hidden}), more than "
            f"{MAX_PROJECTOR_WEIGHTS / 1e6:.0f} M",
            fix="lower --trans-hidden, --resample to a lower rate or shorten the window "
            "(--tmin/--tmax)")


def build_model(cfg: MVCNetConfig, n_chans: int, n_times: int, n_classes: int,
                sfreq: float | None = None) -> nn.Module:
    """The :class:`~medcl.mvcnet.model.MVCNet` of ``cfg`` for the data (sizes: :func:`model_sizes`;
    ``sfreq`` is needed when ``cfg.pool`` is ``None``)."""
    from .model import MVCNet

    pool, hidden = model_sizes(cfg, n_times, sfreq)
    return MVCNet(n_chans, n_times, n_classes, n_filters=cfg.n_filters,
                  kernel_size=cfg.kernel_size, pool=pool, dropout=cfg.dropout,
                  trans_heads=cfg.trans_heads, trans_layers=cfg.trans_layers,
                  trans_hidden=hidden)


def train_mvcnet(cfg: MVCNetConfig, X: np.ndarray, y: np.ndarray, *, ch_names: list[str],
                 sfreq: float, classes: list[str], seed: int, run_dir: Path | None = None,
                 progress: bool = False, accelerator: str = "auto", resume: bool = False
                 ) -> tuple[nn.Module, list[dict]]:
    """Train MVCNet on preprocessed trials ``X`` (N, C, T) with labels ``y`` (N,).

    Returns the trained model (CPU, eval mode) and the engine's epoch rows; the model of the last
    epoch is kept, as the authors report last-epoch accuracy. With a ``run_dir`` the engine
    writes ``metrics.csv`` and a checkpoint every epoch there, and ``resume`` continues from the
    last one. With ``progress``: the engine's bar on a terminal, else one plain line per epoch
    on standard error (the engine prints both).
    """
    from medcl.contrastive.engine import Engine, EngineConfig

    from .views import ViewPipeline

    engine = Engine(EngineConfig(max_epochs=cfg.epochs, seed=seed, progress=progress,
                                 accelerator=accelerator, resume=resume,
                                 precision=getattr(cfg, "precision", None)), run_dir)
    model = build_model(cfg, X.shape[1], X.shape[2], len(classes), sfreq)
    views = ViewPipeline(list(cfg.views), ch_names, sfreq, classes)
    objective = MVCNetObjective(cfg.temperature, cfg.lambda_cvc, cfg.lambda_cmc)
    data = TensorDataset(torch.as_tensor(X, dtype=torch.float32),
                         torch.as_tensor(y, dtype=torch.long))
    loader = make_loader(data, cfg.batch_size)  # the authors' steps per epoch

    channel_maps = views.channel_maps(X.shape[1])

    def step(net, batch):
        return multiview_step(net, views, objective, *batch, channel_maps=channel_maps)

    # Adam as the authors (1e-3, no weight decay); the fused kernel (one pass over each
    # parameter instead of one per update term) on the CPU, where the 45M-weight projector
    # makes the update a noticeable share of a step.
    fused = engine.fabric.device.type == "cpu"
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=fused or None)
    model = engine.fit(model, optimizer, loader, step)
    return model.cpu().eval(), engine.history


@torch.no_grad()
def predict_proba(model: nn.Module, X: np.ndarray, infer: str = "cnn",
                  batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K) of trials ``X`` (N, C, T); ``infer`` = ``cnn`` or ``fused``."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(X), batch_size):
        x = torch.as_tensor(X[start:start + batch_size], dtype=torch.float32, device=device)
        out.append(torch.softmax(model.predict_logits(x, infer=infer), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
