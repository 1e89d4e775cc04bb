"""FAC's three contrasts and two baselines, every InfoNCE term through
:func:`medcl.contrastive.functional.info_nce` with masks.

FAC -- Liu, Xiao, Zhang, Lu, Shao, "FAC: 3D Representation Learning via Foreground Aware Feature
Contrast", CVPR 2023 (arXiv 2303.06388). The authors' released pre-training code is
DepthContrast (scene-level MoCo) and holds none of the terms below, so they are written from the
paper's description; where it leaves a choice, the choice is named here.

(a) :func:`fac_region_loss` -- foreground region contrast. Anchors are points of foreground
    segments in one view; positives are all points of the *same segment* in the other view;
    every other point of the other view (other segments, background, other clouds) is a
    negative. Paper: ``L = -log sum_{p in P(i)} e^{s_ip/tau} / sum_k e^{s_ik/tau}``. Departure:
    the kernel's multi-positive form ``-1/|P(i)| sum_{p in P(i)} log(e^{s_ip/tau} / sum_k
    e^{s_ik/tau})`` (SupCon's ``L_out``, Khosla et al. 2020 eq. 2), which Khosla et al. found
    to train better and which the one kernel computes in chunks without an (N, N) mask.
(b) :func:`fac_fgbg_loss` -- foreground-background distinction at segment level. Segment
    features are the mean of their points' features (then L2-normalised). An anchor is a
    foreground segment in one view, its positive the same segment in the other view, and its
    negatives *only background segments*: other foreground segments are neither positive nor
    negative, which is how medcl reads "prevent over-discrimination between segments while
    encouraging foreground-to-background distinction".
(c) :class:`SiameseCorrespondence` + :func:`correspondence_loss` -- the Siamese correspondence
    module: one attention block with shared weights applied to both views, adding to each point
    feature its intra-view attention read-out and its cross-view attention read-out
    (``g = f + Attn(f, f) + Attn(f, f_other)``). Its output features feed (a) and (b) (the
    paper's "adaptive feature learning"), and its cross-view correlations give matches: each
    anchor's positive is its most similar point of the other view *within the same segment*
    (the restriction keeps matches from drifting to another object); the match is a constant
    (argmax), the gradient flows through the similarities. Single head, one block: the paper's
    depth and head count are not given in text we could verify.

Baselines:

- :func:`point_info_nce` -- PointContrast's PointInfoNCE (Xie et al. 2020, eq. 2): anchors are
  points with a true correspondence, the positive is the matching point of the other view and
  the negatives are the other matched points.
- :func:`cloud_nt_xent` -- SimCLR (Chen et al. 2020, eq. 1) on pooled whole-cloud embeddings.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functional import LabelMasks, info_nce, pair_labels

__all__ = [
    "fac_region_loss",
    "fac_fgbg_loss",
    "segment_features",
    "SiameseCorrespondence",
    "match_within_segments",
    "correspondence_loss",
    "point_info_nce",
    "cloud_nt_xent",
]


def fac_region_loss(z_a: Tensor, seg_a: Tensor, z_b: Tensor, seg_b: Tensor,
                    temperature: float = 0.1, chunk_size: int | None = 1024) -> Tensor:
    """FAC (a): anchors ``z_a`` (Na, D) of foreground points with segment ids ``seg_a`` (Na,);
    samples ``z_b`` (Nb, D) of the other view with ``seg_b`` (Nb,) (-1: no segment). Positives:
    same segment id. Features are L2-normalised here."""
    za, zb = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    return info_nce(za, zb, LabelMasks(seg_a, seg_b), temperature=temperature,
                    chunk_size=chunk_size)


def segment_features(z: Tensor, seg: Tensor, n_segments: int) -> tuple[Tensor, Tensor]:
    """Mean feature of each segment: ``(n_segments, D)`` and a (n_segments,) bool "present"."""
    ok = seg >= 0
    sums = z.new_zeros(n_segments, z.shape[1]).index_add(0, seg[ok], z[ok])
    count = torch.bincount(seg[ok], minlength=n_segments).to(z.dtype)
    return sums / count.clamp_min(1)[:, None], count > 0


def fac_fgbg_loss(s_a: Tensor, s_b: Tensor, foreground: Tensor, temperature: float = 0.1
                  ) -> Tensor:
    """FAC (b): ``s_a``, ``s_b`` (K, D) features of the same K segments in the two views;
    ``foreground`` (K,) bool. Anchor: a foreground segment of view a; positive: itself in view
    b; negatives: the background segments of view b. Features are L2-normalised here."""
    fg = foreground.bool()
    za, zb = F.normalize(s_a[fg], dim=1), F.normalize(s_b, dim=1)
    pos = torch.eye(s_a.shape[0], dtype=torch.bool, device=za.device)[fg]
    neg = (~fg)[None, :].expand_as(pos)
    return info_nce(za, zb, pos, neg, temperature=temperature)


class SiameseCorrespondence(nn.Module):
    """FAC (c): ``g = f + Attn(f, f) + Attn(f, f_other)`` with one set of weights for both
    views (Siamese) and for both attentions. Inputs (S, D) per view of one cloud."""

    def __init__(self, dim: int):
        super().__init__()
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)  # starts as the identity map
        nn.init.zeros_(self.out.bias)

    def attend(self, f: Tensor, other: Tensor) -> Tensor:
        w = (self.q(f) @ self.k(other).T) / math.sqrt(f.shape[1])
        return w.softmax(dim=1) @ self.v(other)

    def forward(self, f1: Tensor, f2: Tensor) -> tuple[Tensor, Tensor]:
        g1 = f1 + self.out(self.attend(f1, f1) + self.attend(f1, f2))
        g2 = f2 + self.out(self.attend(f2, f2) + self.attend(f2, f1))
        return g1, g2


@torch.no_grad()
def match_within_segments(z_a: Tensor, seg_a: Tensor, z_b: Tensor, seg_b: Tensor) -> Tensor:
    """For each anchor, the index of its most cosine-similar sample with the same segment id,
    or -1 when none (or the anchor has no segment). (Na,) long."""
    sim = F.normalize(z_a, dim=1) @ F.normalize(z_b, dim=1).T
    same = (seg_a[:, None] == seg_b[None, :]) & (seg_a[:, None] >= 0)
    sim = sim.masked_fill(~same, float("-inf"))
    best = sim.argmax(1)
    return torch.where(same.any(1), best, torch.full_like(best, -1))


def correspondence_loss(g_a: Tensor, seg_a: Tensor, g_b: Tensor, seg_b: Tensor,
                        temperature: float = 0.1, chunk_size: int | None = 1024) -> Tensor:
    """FAC (c): InfoNCE with each anchor's positive its within-segment best match in the other
    view (:func:`match_within_segments`) and every other sample negative."""
    match = match_within_segments(g_a, seg_a, g_b, seg_b)
    cols = torch.arange(g_b.shape[0], device=g_b.device)
    za, zb = F.normalize(g_a, dim=1), F.normalize(g_b, dim=1)
    return info_nce(za, zb, LabelMasks(match, cols), temperature=temperature,
                    chunk_size=chunk_size)


def point_info_nce(z_a: Tensor, z_b: Tensor, temperature: float = 0.4,
                   chunk_size: int | None = 1024) -> Tensor:
    """PointContrast: row ``i`` of ``z_a`` (P, D) and of ``z_b`` (P, D) are a true
    correspondence; the other rows of ``z_b`` are negatives. Normalised here."""
    ids = torch.arange(z_a.shape[0], device=z_a.device)
    return info_nce(F.normalize(z_a, dim=1), F.normalize(z_b, dim=1), LabelMasks(ids, ids),
                    temperature=temperature, chunk_size=chunk_size)


def cloud_nt_xent(h_a: Tensor, h_b: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's NT-Xent over 2B cloud embeddings (B, D) of two views."""
    z = F.normalize(torch.cat([h_a, h_b]), dim=1)
    labels = pair_labels(h_a.shape[0], 2, device=z.device)
    return info_nce(z, z, LabelMasks(labels, labels, torch.arange(z.shape[0],
                                                                  device=z.device)),
                    temperature=temperature)
