"""The three point pre-training methods as modules over a batch of view pairs.

A :class:`ViewPair` holds two views of B clouds with N points each, the segment of every point
(numbered per cloud, ``-1`` for none), which segments are foreground, and ``P`` true
correspondences per cloud. :class:`PointMethod` maps it to a scalar loss and a dict of logged
terms; the encoder (``.encoder``) gives the frozen per-point features the probes read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .backbones import build_point_backbone
from .losses import (
    SiameseCorrespondence,
    cloud_nt_xent,
    correspondence_loss,
    fac_fgbg_loss,
    fac_region_loss,
    point_info_nce,
    segment_features,
)

__all__ = ["ViewPair", "PointMethod", "build_point_method", "METHOD_TEMPERATURE"]

METHOD_TEMPERATURE = {"fac": 0.1, "pointcontrast": 0.4, "simclr": 0.5}
"""FAC: 0.1 (the temperature of the authors' released pre-training config; the paper's value
could not be verified); PointContrast: 0.4 (Xie et al. 2020); SimCLR: 0.5 (Chen et al. 2020)."""


@dataclass
class ViewPair:
    """Two views of B clouds. ``xyz1``, ``xyz2`` (B, N, 3); ``seg1``, ``seg2`` (B, N) long;
    ``foreground`` (B, K) bool per segment; ``corr`` (B, P, 2) long (index in view 1, index in
    view 2) of true correspondences."""

    xyz1: Tensor
    xyz2: Tensor
    seg1: Tensor
    seg2: Tensor
    foreground: Tensor
    corr: Tensor

    def to(self, device: torch.device | str) -> ViewPair:
        return ViewPair(*(t.to(device) for t in (self.xyz1, self.xyz2, self.seg1, self.seg2,
                                                  self.foreground, self.corr)))


def _head(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_in), nn.ReLU(), nn.Linear(d_in, d_out))


def _zero_if_empty(n: int, fn, ref: Tensor) -> Tensor:
    return fn() if n > 0 else ref.sum() * 0.0


class PointMethod(nn.Module):
    """``method`` in ``fac``, ``pointcontrast``, ``simclr`` over one point backbone.

    ``samples`` points per view and cloud enter FAC's contrasts (the paper samples too: the
    attention of (c) is ``O(samples^2)`` per cloud); ``weights`` are FAC's (a), (b), (c).
    """

    def __init__(self, method: str, backbone: str = "dgcnn", width: int = 64, out_dim: int = 64,
                 proj_dim: int = 64, temperature: float | None = None, samples: int = 512,
                 weights: tuple[float, float, float] = (1.0, 1.0, 1.0), k: int = 16,
                 chunk_size: int = 1024):
        super().__init__()
        if method not in METHOD_TEMPERATURE:
            raise ValueError(f"unknown point method {method!r} (fac, pointcontrast, simclr)")
        self.method = method
        self.encoder = build_point_backbone(backbone, width, out_dim, k)
        d_in = 2 * out_dim if method == "simclr" else out_dim
        self.head = _head(d_in, proj_dim)
        self.scn = SiameseCorrespondence(proj_dim) if method == "fac" else None
        self.tau = float(temperature or METHOD_TEMPERATURE[method])
        self.samples, self.weights, self.chunk = samples, weights, chunk_size

    def forward(self, batch: ViewPair) -> tuple[Tensor, dict[str, float]]:
        if self.method == "simclr":
            h1 = self.head(self.encoder.pool(self.encoder(batch.xyz1)))
            h2 = self.head(self.encoder.pool(self.encoder(batch.xyz2)))
            loss = cloud_nt_xent(h1, h2, self.tau)
            return loss, {"loss": float(loss.detach())}
        f1 = self.head(self.encoder(batch.xyz1))
        f2 = self.head(self.encoder(batch.xyz2))
        if self.method == "pointcontrast":
            b = torch.arange(f1.shape[0], device=f1.device)[:, None]
            za = f1[b, batch.corr[..., 0]].reshape(-1, f1.shape[-1])
            zb = f2[b, batch.corr[..., 1]].reshape(-1, f2.shape[-1])
            loss = 0.5 * (point_info_nce(za, zb, self.tau, self.chunk)
                          + point_info_nce(zb, za, self.tau, self.chunk))
            return loss, {"loss": float(loss.detach())}
        return self._fac(batch, f1, f2)

    def _fac(self, batch: ViewPair, f1: Tensor, f2: Tensor) -> tuple[Tensor, dict[str, float]]:
        assert self.scn is not None
        n_clouds, n, _ = f1.shape
        k = batch.foreground.shape[1]
        s = min(self.samples, n)
        g1s, g2s, s1s, s2s = [], [], [], []
        for b in range(n_clouds):
            i1 = torch.randperm(n, device=f1.device)[:s]
            i2 = torch.randperm(n, device=f1.device)[:s]
            g1, g2 = self.scn(f1[b, i1], f2[b, i2])
            g1s.append(g1)
            g2s.append(g2)
            for seg, idx, acc in ((batch.seg1[b], i1, s1s), (batch.seg2[b], i2, s2s)):
                lab = seg[idx]
                acc.append(torch.where(lab >= 0, lab + b * k, lab))
        g1, g2 = torch.cat(g1s), torch.cat(g2s)
        seg1, seg2 = torch.cat(s1s), torch.cat(s2s)
        fg_seg = batch.foreground.reshape(-1)
        fg1 = (seg1 >= 0) & fg_seg[seg1.clamp_min(0)]
        fg2 = (seg2 >= 0) & fg_seg[seg2.clamp_min(0)]
        n1, n2 = int(fg1.sum()), int(fg2.sum())
        tau, c = self.tau, self.chunk
        la = 0.5 * (_zero_if_empty(n1, lambda: fac_region_loss(g1[fg1], seg1[fg1], g2, seg2,
                                                                 tau, c), g1)
                    + _zero_if_empty(n2, lambda: fac_region_loss(g2[fg2], seg2[fg2], g1, seg1,
                                                                   tau, c), g1))
        sf1, p1 = segment_features(g1, seg1, n_clouds * k)
        sf2, p2 = segment_features(g2, seg2, n_clouds * k)
        both = p1 & p2
        fgb = fg_seg & both
        has_bg = bool((both & ~fg_seg).any())
        nb = int(fgb.sum()) if has_bg else 0
        lb = 0.5 * (_zero_if_empty(nb, lambda: fac_fgbg_loss(sf1[both], sf2[both], fgb[both],
                                                             tau), g1)
                    + _zero_if_empty(nb, lambda: fac_fgbg_loss(sf2[both], sf1[both], fgb[both],
                                                               tau), g1))
        lc = 0.5 * (_zero_if_empty(n1, lambda: correspondence_loss(g1[fg1], seg1[fg1], g2, seg2,
                                                                    tau, c), g1)
                    + _zero_if_empty(n2, lambda: correspondence_loss(g2[fg2], seg2[fg2], g1,
                                                                      seg1, tau, c), g1))
        wa, wb, wc = self.weights
        loss = wa * la + wb * lb + wc * lc
        return loss, {"loss": float(loss.detach()), "region": float(la.detach()),
                      "fgbg": float(lb.detach()), "corr": float(lc.detach())}

    @torch.no_grad()
    def embed(self, xyz: Tensor) -> Tensor:
        """Frozen per-point encoder features: (B, N, 3) -> (B, N, out_dim)."""
        return self.encoder(xyz)


def build_point_method(method: str, **kwargs) -> PointMethod:
    """:class:`PointMethod` with keyword settings (backbone, width, temperature, ...)."""
    return PointMethod(method, **kwargs)
