"""Hydra / SimLAP: contrast over arbitrary class pairs through class-pair feature gates
(Wang et al. 2024, "Rethinking Positive Pairs in Contrastive Learning", arXiv:2410.18200)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functional import info_nce_logits


class HydraLoss(nn.Module):
    """Class-pair-gated multi-positive InfoNCE plus a detached linear probe.

    For an anchor ``i`` of class ``y1 = y_i`` paired with a class ``y2 = c_i``:

    - gate ``g = sigmoid(MLP((E[y1] + E[y2]) / 2))`` from a label-embedding table ``E``;
    - filtered features ``normalize(g * z)`` for the anchor and for every sample (the
      anchor's gate filters everything it is compared with);
    - multi-positive InfoNCE at ``tau`` (``1/tau = 10``): positives the samples of class
      ``y2`` (the anchor itself excluded), negatives the samples of classes outside
      ``{y1, y2}``; ``y2 = y1`` reduces to SupCon on gated features;
    - a linear probe on the detached representation ``h`` (cross entropy), so the probe's
      accuracy can be tracked without shaping the encoder.

    Class partners ``c`` are drawn uniformly from the classes present in the batch unless
    given. The filtered cosine is computed from matmuls
    (``<g^2 z_i, z_j> / (||g z_i|| ||g z_j||)``), never forming ``(N, N, D)`` tensors.

    Parameters
    ----------
    n_classes : int
        Size of the label-embedding table and the probe.
    dim : int
        Width ``D`` of the projections ``z``.
    embed_dim : int
        Width of the label embeddings (64, our choice).
    temperature : float
        ``tau`` (0.1).
    probe_dim : int, optional
        Width of ``h`` for the linear probe; ``None`` disables it.

    Examples
    --------
    >>> loss_fn = HydraLoss(n_classes=4, dim=16, probe_dim=32)
    >>> z, h, y = torch.randn(12, 16), torch.randn(12, 32), torch.arange(12) % 4
    >>> out = loss_fn(z, y, h=h)
    >>> out["loss"].backward()   # out: loss, contrastive, probe, probe_accuracy
    """

    def __init__(self, n_classes: int, dim: int, embed_dim: int = 64, temperature: float = 0.1,
                 probe_dim: int | None = None) -> None:
        super().__init__()
        if n_classes < 2 or dim < 1 or temperature <= 0:
            raise ValueError("HydraLoss: n_classes >= 2, dim >= 1 and temperature > 0 needed")
        self.n_classes, self.dim, self.temperature = int(n_classes), int(dim), float(temperature)
        self.embedding = nn.Embedding(n_classes, embed_dim)
        self.gate = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(),
                                  nn.Linear(embed_dim, dim))
        self.probe = nn.Linear(probe_dim, n_classes) if probe_dim else None

    def gates(self, y1: Tensor, y2: Tensor) -> Tensor:
        """Gates (N, D) in (0, 1) for class pairs ``(y1_i, y2_i)``."""
        return torch.sigmoid(self.gate(0.5 * (self.embedding(y1) + self.embedding(y2))))

    def filtered_logits(self, z: Tensor, g: Tensor) -> Tensor:
        """``cos(g_i z_i, g_i z_j) / tau``: (N, N)."""
        g2 = g.pow(2)
        num = (g2 * z) @ z.T
        norms = (g2 @ z.pow(2).T).clamp_min(1e-12).sqrt()  # ||g_i z_j||, (N, N)
        own = norms.diagonal()
        return num / (own[:, None] * norms) / self.temperature

    def forward(self, z: Tensor, labels: Tensor | None, h: Tensor | None = None,
                partner: Tensor | None = None, generator: torch.Generator | None = None
                ) -> dict[str, Tensor]:
        """``z``: (N, D) projections (several views may be stacked as extra rows with their
        labels repeated); ``labels``: (N,) class ids, required; ``h``: (N, probe_dim)
        representations for the probe; ``partner``: (N,) class of each anchor's positives."""
        if labels is None:
            raise ValueError("HydraLoss needs class labels (give --labels or class subfolders); "
                             "it has no unsupervised mode")
        if z.ndim != 2 or z.shape[1] != self.dim or labels.shape != (z.shape[0],):
            raise ValueError(f"HydraLoss: z must be (N, {self.dim}) and labels (N,), got "
                             f"{tuple(z.shape)} and {tuple(labels.shape)}")
        if int(labels.min()) < 0 or int(labels.max()) >= self.n_classes:
            raise ValueError(f"HydraLoss: labels must lie in [0, {self.n_classes})")
        labels = labels.long()
        if partner is None:
            present = torch.unique(labels)
            pick = torch.randint(len(present), labels.shape, generator=generator,
                                 device=generator.device if generator is not None else "cpu")
            partner = present[pick.to(present.device)]
        g = self.gates(labels, partner)
        logits = self.filtered_logits(z, g)
        eye = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
        pos = (labels[None, :] == partner[:, None]) & ~eye
        neg = (labels[None, :] != labels[:, None]) & (labels[None, :] != partner[:, None])
        contrastive = info_nce_logits(logits, pos, neg)
        out = {"contrastive": contrastive}
        total = contrastive
        if self.probe is not None and h is not None:
            pred = self.probe(h.detach())
            probe = F.cross_entropy(pred, labels)
            total = total + probe
            out["probe"] = probe.detach()
            out["probe_accuracy"] = (pred.argmax(1) == labels).float().mean()
        out["loss"] = total
        return out
