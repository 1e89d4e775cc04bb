"""MVCNet training on the core engine: cross-entropy on every view plus cross-view and
cross-model contrast (Wang et al. 2025, "MVCNet: Multi-View Contrastive Network for Motor Imagery
Classification", sec. 3.4, eq. 8-11: L = L_CE + lambda1 L_CVC + lambda2 L_CMC)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from .config import MVCNetConfig


class MVCNetObjective(nn.Module):
    """The loss of one batch given the model's outputs on the raw trials and their views.

    - ``ce``: cross-entropy of the classifier on the raw batch and on every view (summed; a
      reflected view carries its swapped labels);
    - ``cvc``: cross-view contrast, NT-Xent between the representation ``[cnn ; proj]`` of the raw
      batch and of each view, averaged over views;
    - ``cmc``: cross-model contrast, NT-Xent between CNN features and Transformer projections of
      all views together.
    NT-Xent is the core's :class:`medcl.contrastive.losses.NTXentLoss` (cosine similarity, ``tau``).
    """

    def __init__(self, temperature: float = 0.2, lambda_cvc: float = 0.1,
                 lambda_cmc: float = 0.1) -> None:
        super().__init__()
        from medcl.contrastive.losses import NTXentLoss

        self.ntxent = NTXentLoss(temperature)
        self.lambda_cvc, self.lambda_cmc = lambda_cvc, lambda_cmc

    def forward(self, out: dict[str, Tensor], labels: Tensor, n_views: int) -> dict[str, Tensor]:
        """``out``: model outputs on ``(1 + n_views) * B`` stacked trials (raw first);
        ``labels``: the matching ``(1 + n_views) * B`` labels."""
        chunks = 1 + n_views
        ce = sum(F.cross_entropy(lg, yy) for lg, yy in
                 zip(out["logits"].chunk(chunks), labels.chunk(chunks), strict=True))
        rep = torch.cat([out["cnn"], out["proj"]], dim=1).chunk(chunks)
        if n_views:
            cvc = sum(self.ntxent(rep[0], rep[k]) for k in range(1, chunks)) / n_views
        else:
            cvc = ce.new_zeros(())
        cmc = self.ntxent(out["cnn"], out["proj"])
        loss = ce + self.lambda_cvc * cvc + self.lambda_cmc * cmc
        return {"loss": loss, "ce": ce.detach(), "cvc": cvc.detach(), "cmc": cmc.detach()}


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


MAX_PROJECTOR_WEIGHTS = 200_000_000


def check_model_size(cfg: MVCNetConfig, n_chans: int, n_times: int) -> None:
    """A :class:`medcl.io.ConfigError` when the Transformer projector (``n_chans * n_times`` inputs
    to ``trans_hidden``) would exceed :data:`MAX_PROJECTOR_WEIGHTS` weights (800 MB in float32,
    several times that with gradients and Adam): refuse before running out of memory."""
    from medcl.io import ConfigError

    weights = n_chans * n_times * cfg.trans_hidden
    if weights > MAX_PROJECTOR_WEIGHTS:
        raise ConfigError(
            f"the Transformer projector would have {weights / 1e6:.0f} M weights ({n_chans} "
            f"channels x {n_times} samples x {cfg.trans_hidden}), more than "
            f"{MAX_PROJECTOR_WEIGHTS / 1e6:.0f} M",
            fix="lower --trans-hidden, --resample to a lower rate or shorten the window "
            "(--tmin/--tmax)")


def build_model(cfg: MVCNetConfig, n_chans: int, n_times: int, n_classes: int) -> nn.Module:
    from .model import MVCNet

    return MVCNet(n_chans, n_times, n_classes, n_filters=cfg.n_filters,
                  kernel_size=cfg.kernel_size, pool=cfg.pool, dropout=cfg.dropout,
                  trans_heads=cfg.trans_heads, trans_layers=cfg.trans_layers,
                  trans_hidden=cfg.trans_hidden)


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
                                 accelerator=accelerator, resume=resume), run_dir)
    model = build_model(cfg, X.shape[1], X.shape[2], len(classes))
    views = ViewPipeline(list(cfg.views), ch_names, sfreq, classes)
    objective = MVCNetObjective(cfg.temperature, cfg.lambda_cvc, cfg.lambda_cmc)
    data = TensorDataset(torch.as_tensor(X, dtype=torch.float32),
                         torch.as_tensor(y, dtype=torch.long))
    batch = min(cfg.batch_size, len(data))
    loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=len(data) > batch)

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
