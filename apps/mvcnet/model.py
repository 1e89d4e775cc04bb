"""The MVCNet dual-branch network: an IFNet-style CNN and a channel-token Transformer.

Paper: Wang, Li, Chen, Wu, "MVCNet: Multi-View Contrastive Network for Motor Imagery
Classification", Knowledge-Based Systems 2025, arXiv:2502.17482 — the dual-branch architecture
(CNN branch for local spatio-temporal features, Transformer branch for global temporal
dependencies, their features fused and aligned by the cross-view / cross-model contrastive
losses). The CNN branch is IFNet (Wang, Yao, Wang, IEEE TNSRE 31:1900-1911, 2023) with a single
frequency band, as in the authors' code (github.com/wzwvv/MVCNet, ``radix=1``).

This file holds the architecture as plain ``torch.nn`` modules; the speed kernels that evaluate
the same modules faster (``fast=True``, the default) live in :mod:`medcl.mvcnet._kernels`.

Example
-------
>>> import torch
>>> net = MVCNet(n_chans=22, n_times=1000, n_classes=2, trans_hidden=64)
>>> out = net(torch.randn(4, 22, 1000))
>>> sorted(out), tuple(out["cnn"].shape), tuple(out["logits"].shape)
(['cnn', 'fused_logits', 'logits', 'proj'], (4, 512), (4, 2))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from . import _kernels

__all__ = ["MVCNet", "authors_pool"]

ChannelMap = tuple[Sequence[int], Sequence[float]]

_INFER_MODES = ("cnn", "fused")


class MVCNet(nn.Module):
    """Dual-branch CNN + Transformer network of MVCNet (Wang et al., KBS 2025).

    CNN branch (IFNet stem, one band): pointwise ``Conv1d(C -> F_n, k=1)`` + BN, depthwise
    ``Conv1d(F_n, k=kernel_size, groups=F_n, padding='same')`` + BN, GELU, ``AvgPool1d(pool)``,
    dropout, flatten; its output has ``feature_dim = n_filters * (n_times // pool)`` values (the
    ``n_times % pool`` trailing samples are dropped by the pooling, which is what the authors'
    "drop the last sample" achieves for 1001-sample BNCI2014001 trials).

    Transformer branch: every channel is one token whose features are the samples of the trial
    (``d_model = n_times``), encoded by ``nn.TransformerEncoder`` (``trans_layers`` post-norm
    layers, ``trans_heads`` heads, feed-forward width ``max(2 * d_model, 128)``, dropout 0.1),
    flattened to ``C * d_model`` and projected by Linear(-> ``trans_hidden``, by default
    ``4 * feature_dim`` as the authors' ``projector_dim1``) - LayerNorm - ReLU -
    Linear(-> ``feature_dim``) - Tanh, so that both branches live in the same space for the
    cross-model contrastive loss. ``d_model`` must be divisible by ``trans_heads``: when it is
    not, the last ``n_times % trans_heads`` samples are cropped (``d_model = n_times -
    n_times % trans_heads``), which again reproduces the authors' "drop the last sample" of
    1001-sample trials with 2 heads; no learned input projection is added.

    The linear classifier reads the CNN features (the authors' test-time path). A second linear
    head, ``fused_classifier``, reads the fused features of both branches (:func:`fuse`) with
    the branches' gradients stopped: it learns to read the fusion without changing what the
    network learns (see :meth:`predict_logits`).

    Parameters
    ----------
    n_chans : int
        Number of EEG channels ``C``.
    n_times : int
        Number of samples per trial ``T`` (must be ``>= pool`` and ``>= trans_heads``).
    n_classes : int
        Number of classes ``K``.
    n_filters : int, default 64
        Feature maps of the CNN branch (IFNet ``out_planes``).
    kernel_size : int, default 63
        Length of the depthwise temporal convolution.
    pool : int or None, default 125
        Average-pooling window and stride (IFNet ``patch_size``); ``None``: the authors' value
        for ``sfreq`` (:func:`authors_pool`: 125 at 250 Hz, 128 at 512 Hz).
    dropout : float, default 0.5
        Dropout after pooling in the CNN branch.
    trans_heads : int, default 2
        Attention heads of the Transformer branch.
    trans_layers : int, default 1
        Encoder layers of the Transformer branch.
    trans_hidden : int or None, default None
        Hidden width of the Transformer projection head; ``None``: ``4 * feature_dim`` as the
        authors (``projector_dim1 = feature_deep_dim * 4`` in ``MVCNet_CO.py``: 2048 for
        BNCI2014001 at 250 Hz, 5120 at 512 Hz).
    sfreq : float or None, default None
        Sampling rate (Hz), braindecode-style metadata; needed only when ``pool`` is ``None``.
    fast : bool, default True
        Evaluate the modules along the speed kernels of :mod:`medcl.mvcnet._kernels` (same
        parameters, same results up to rounding); ``False`` calls the plain ``torch.nn``
        modules. An attribute: it can be switched on a built or loaded network.

    Attributes
    ----------
    n_chans, n_times, n_outputs : int
        Braindecode-style metadata (``EEGModuleMixin`` names); ``n_outputs == n_classes``.
    feature_dim : int
        ``F``, the size of both the CNN features and the Transformer projection.
    d_model : int
        Token width of the Transformer branch.
    fast : bool
        Which path :meth:`forward` takes.

    Notes
    -----
    Inputs are ``(B, C, T)`` floats at the µV scale, already aligned / standardised by the
    caller (the authors apply Euclidean alignment before the network). Convolution and linear
    weights of the CNN branch follow IFNet's initialisation (truncated normal, std 0.01, zero
    biases), which we also use for the classifier; the Transformer branch keeps PyTorch's
    defaults, as in the authors' code.

    The modules (``cnn``, ``encoder``, ``projector``, ``classifier``) hold the parameters and
    define the function, whichever the path: both paths have the same ``state_dict``, so a
    checkpoint of one loads into the other. With ``fast=True`` :meth:`forward` evaluates them
    along faster routes: on the CPU the CNN branch runs time-major
    (:func:`~medcl.mvcnet._kernels.cnn_branch`); the encoder layer runs batch-first without
    ``nn.MultiheadAttention``'s layout copies (:func:`~medcl.mvcnet._kernels.encode`); and,
    given ``channel_maps``, the raw trials and their sign-flipped / reflected views share one
    input projection. Dropout draws differ between the paths; everything else agrees.
    """

    def __init__(
        self,
        n_chans: int,
        n_times: int,
        n_classes: int,
        *,
        n_filters: int = 64,
        kernel_size: int = 63,
        pool: int | None = 125,
        dropout: float = 0.5,
        trans_heads: int = 2,
        trans_layers: int = 1,
        trans_hidden: int | None = None,
        sfreq: float | None = None,
        fast: bool = True,
    ) -> None:
        super().__init__()
        if pool is None:
            if sfreq is None:
                raise ValueError("pool=None (the authors' pooling for the rate) needs sfreq")
            pool = authors_pool(sfreq)
        if trans_hidden is None:  # 4 x the feature size (max 1: let the checks below speak)
            trans_hidden = max(1, 4 * int(n_filters) * (int(n_times) // max(1, int(pool))))
        _check_arguments(
            {
                "n_chans": n_chans,
                "n_times": n_times,
                "n_classes": n_classes,
                "n_filters": n_filters,
                "kernel_size": kernel_size,
                "pool": pool,
                "trans_heads": trans_heads,
                "trans_layers": trans_layers,
                "trans_hidden": trans_hidden,
            },
            dropout,
        )
        self.n_chans = int(n_chans)
        self.n_times = int(n_times)
        self.n_outputs = int(n_classes)
        self.sfreq = None if sfreq is None else float(sfreq)
        self.pool = int(pool)
        self.feature_dim = int(n_filters) * (self.n_times // int(pool))
        self.d_model = self.n_times - self.n_times % int(trans_heads)
        self.fast = bool(fast)

        # The order of construction fixes which random numbers each module's default
        # initialisation draws under a given seed: keep it.
        self.cnn = _cnn_branch(self.n_chans, n_filters, kernel_size, pool, dropout)
        self.encoder = _transformer_encoder(self.d_model, trans_heads, trans_layers)
        self.projector = _projection_head(
            self.n_chans * self.d_model, trans_hidden, self.feature_dim
        )
        self.classifier = nn.Linear(self.feature_dim, self.n_outputs)

        self.cnn.apply(_ifnet_init)
        self.classifier.apply(_ifnet_init)
        # Zero-initialised, and built with the random state put back, so that adding this head
        # leaves every other draw under a seed (weights, dropout, shuffling) as it was.
        with torch.random.fork_rng(devices=[]):
            self.fused_classifier = nn.Linear(self.feature_dim, self.n_outputs)
        nn.init.zeros_(self.fused_classifier.weight)
        nn.init.zeros_(self.fused_classifier.bias)

    # ------------------------------------------------------------------ branches
    def _check(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.n_chans or x.shape[2] != self.n_times:
            raise ValueError(
                f"expected input of shape (B, {self.n_chans}, {self.n_times}), got {tuple(x.shape)}"
            )

    def cnn_features(self, x: Tensor) -> Tensor:
        """CNN-branch features ``(B, F)`` of trials ``x: (B, C, T)``: ``self.cnn(x)``.

        With ``fast`` on the CPU (odd kernel length) the branch runs time-major
        (:func:`~medcl.mvcnet._kernels.cnn_branch`): the same function and parameters,
        several times faster to train.
        """
        self._check(x)
        if self.fast:
            return _kernels.cnn_branch(self.cnn, x)
        return self.cnn(x)

    def transformer_projection(
        self, x: Tensor, channel_maps: Sequence[ChannelMap | None] | None = None
    ) -> Tensor:
        """Transformer-branch projection ``(B, F)`` (in ``[-1, 1]``) of ``x: (B, C, T)``:
        ``self.projector(self.encoder(x[..., :d_model]).flatten(1))``.

        ``channel_maps``: see :meth:`forward` (used by the fast path only).
        """
        self._check(x)
        h = x[..., : self.d_model]  # (B, C, d_model): channels are the tokens
        if self.fast:
            h = _kernels.encode(self.encoder, h, _kernels.checked_maps(x, channel_maps))
        else:
            h = self.encoder(h)
        return self.projector(h.flatten(1))

    # ------------------------------------------------------------------ API
    def forward(
        self, x: Tensor, channel_maps: Sequence[ChannelMap | None] | None = None
    ) -> dict[str, Tensor]:
        """Run both branches.

        Parameters
        ----------
        x : Tensor, shape (B, C, T)
            Trials at the µV scale.
        channel_maps : sequence of ``(perm, sign)`` or None, optional
            For a training batch of the raw trials and their views stacked, ``x = cat([raw,
            view_1, ..., view_V])`` (``V = len(channel_maps)``, equal chunks):
            ``channel_maps[k - 1] = (perm, sign)`` states that chunk ``k`` is the raw chunk with
            channel ``i`` replaced by ``sign[i]`` times channel ``perm[i]`` (sign flip, channel
            reflection: :meth:`medcl.mvcnet.views.ViewPipeline.channel_maps`); ``None`` for other
            views. With ``fast``, the Transformer's input projection, linear in the channel
            tokens, is then derived from the raw chunk's rather than recomputed: the outputs and
            gradients are those of ``forward(x)`` (up to rounding), the statement is checked on
            ``x``. The plain path (``fast=False``) computes every chunk and ignores the maps.

        Returns
        -------
        dict
            ``"cnn"``: CNN features ``(B, F)``; ``"proj"``: Transformer projection ``(B, F)``;
            ``"logits"``: classifier on the CNN features ``(B, K)``; ``"fused_logits"``: the
            fused head on :func:`fuse` of both, with the branches detached ``(B, K)`` (its
            cross-entropy trains that head only).
        """
        cnn = self.cnn_features(x)
        proj = self.transformer_projection(x, channel_maps)
        fused = self.fused_classifier(fuse(cnn.detach(), proj.detach()))
        return {"cnn": cnn, "proj": proj, "logits": self.classifier(cnn), "fused_logits": fused}

    def predict_logits(self, x: Tensor, infer: str = "cnn") -> Tensor:
        """Class logits ``(B, K)`` for trials ``x: (B, C, T)``.

        Parameters
        ----------
        x : Tensor, shape (B, C, T)
        infer : {"cnn", "fused"}
            ``"cnn"`` — classifier on the CNN features only; this is what the authors' code
            evaluates at test time (the Transformer branch is not run). ``"fused"`` — the fused
            head ``fused_classifier`` on ``fuse(cnn, proj) = (cnn + proj') / 2``, ``proj'`` the
            projection rescaled to each trial's CNN-feature norm: *our reading* of the paper's
            statement that the final representations of both branches are fused (the authors'
            code does not fuse; treat it as an experiment). The contrastive terms align the
            branches in direction only (cosine similarity) and the projection's scale is free
            (thousands of times the CNN features' at initialisation), hence the rescaling.
            The fused head is trained on the fused features of every training batch with the
            branches detached (:class:`medcl.mvcnet.train.MVCNetObjective`'s ``fused_ce``), so
            the network learns what the authors' objective teaches it and nothing else. Before
            issue 11 was closed, ``"fused"`` fed the fusion to the CNN classifier, trained on
            CNN features only: on an independent recording (100 epochs, 3 seeds) it gave 87.5 /
            62.5 / 97.5 % where the CNN head gave 97.5 % each time.

        Returns
        -------
        Tensor, shape (B, K)
        """
        if infer == "cnn":
            return self.classifier(self.cnn_features(x))
        if infer == "fused":
            return self.forward(x)["fused_logits"]
        raise ValueError(f"infer must be one of {_INFER_MODES}, got {infer!r}")


# ---------------------------------------------------------------------------- construction
def authors_pool(sfreq: float) -> int:
    """The CNN branch's pooling window the authors use at sampling rate ``sfreq`` (Hz).

    ``MVCNet_CO.py`` sets IFNet's ``patch_size`` per dataset: 125 for the 250 Hz sets
    (BNCI2014001, Zhou2016, Blankertz2007 after resampling; 0.5 s) and 128 for the 512 Hz sets
    (BNCI2014002, BNCI2015001; 0.25 s) — a table, not a formula. Other rates take the value of
    the nearer of the two (128 from 381 Hz up).
    """
    if not sfreq > 0:
        raise ValueError(f"sfreq must be > 0, got {sfreq}")
    return 128 if sfreq >= (250.0 + 512.0) / 2 else 125


def _check_arguments(sizes: dict[str, int], dropout: float) -> None:
    """Raise ``ValueError`` unless every size is a positive integer, the trials are at least
    one pooling window and one sample per head long, and ``0 <= dropout < 1``."""
    for name, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    n_times, pool, heads = sizes["n_times"], sizes["pool"], sizes["trans_heads"]
    if n_times < pool:
        raise ValueError(
            f"n_times={n_times} is shorter than pool={pool}: the CNN branch would have no "
            "features; lower `pool` or use longer trials"
        )
    if n_times < heads:
        raise ValueError(f"n_times={n_times} must be >= trans_heads={heads}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def _cnn_branch(
    n_chans: int, n_filters: int, kernel_size: int, pool: int, dropout: float
) -> nn.Sequential:
    """IFNet's stem with a single band (Wang et al., TNSRE 2023): ``(B, C, T) -> (B, F)``,
    ``F = n_filters * (T // pool)`` (PyTorch's default initialisation; see :func:`_ifnet_init`).
    """
    return nn.Sequential(
        nn.Conv1d(n_chans, n_filters, kernel_size=1, bias=False),
        nn.BatchNorm1d(n_filters),
        nn.Conv1d(
            n_filters,
            n_filters,
            kernel_size=kernel_size,
            groups=n_filters,
            padding="same",
            bias=False,
        ),
        nn.BatchNorm1d(n_filters),
        nn.GELU(),
        nn.AvgPool1d(pool, pool),
        nn.Dropout(dropout),
        nn.Flatten(1),
    )


def _transformer_encoder(d_model: int, heads: int, layers: int) -> nn.TransformerEncoder:
    """Post-norm, batch-first encoder over channel tokens of width ``d_model`` (the samples of
    the trial): feed-forward width ``max(2 * d_model, 128)``, ReLU, dropout 0.1."""
    layer = nn.TransformerEncoderLayer(
        d_model=d_model,
        nhead=heads,
        dim_feedforward=max(2 * d_model, 128),
        dropout=0.1,
        batch_first=True,
    )
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


def fuse(cnn: Tensor, proj: Tensor) -> Tensor:
    """``(cnn + proj') / 2`` with ``proj'`` the projection rescaled to the norm of each trial's
    CNN features (``(B, F)`` each): see :meth:`MVCNet.predict_logits`."""
    scale = cnn.norm(dim=1, keepdim=True) / proj.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (cnn + proj * scale) / 2


def _projection_head(in_features: int, hidden: int, feature_dim: int) -> nn.Sequential:
    """Linear - LayerNorm - ReLU - Linear - Tanh: the flattened encoder output into the CNN
    branch's feature space (for the cross-model contrastive loss)."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.LayerNorm(hidden),
        nn.ReLU(),
        nn.Linear(hidden, feature_dim),
        nn.Tanh(),
    )


def _ifnet_init(m: nn.Module) -> None:
    """IFNet initialisation: truncated normal (std 0.01) weights, zero biases, unit BN."""
    if isinstance(m, nn.Linear | nn.Conv1d):
        nn.init.trunc_normal_(m.weight, std=0.01)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm1d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
