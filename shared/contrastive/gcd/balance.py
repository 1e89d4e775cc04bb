"""BaCon's balancing pieces (Bai et al. 2023, "Towards Distribution-Agnostic Generalized Category
Discovery", NeurIPS, sec. 3.2-3.3; authors' code JianhongBai/BaCon ``model/dist_est.py``,
``logits_adj_utils.py``, ``model/softconloss.py``, ``model/reg_loss.py``).

1. The contrastive branch's features are clustered (k-means, ``K`` clusters) and the cluster
   sizes give an estimate ``n_hat`` of the class counts of the training data
   (:func:`estimate_distribution`).
2. The classifier's pseudo-label logits are logit-adjusted by it (Menon et al. 2021, "Long-tail
   learning via logit adjustment", ICLR, eq. 10): ``z_c - tau log pi_hat_c``
   (:func:`logit_adjustment`, ``tau = 0.5`` in the authors' scripts).
3. Unlabelled images predicted as class ``c`` enter the soft SupCon term at the rate
   ``(min_k pi_hat_k / pi_hat_c)^alpha`` (:func:`sampling_rates`), the most confident first
   (:func:`self_balanced_mask`).
4. The classifier's mean-entropy regulariser (SimGCD's ``me-max``) is computed on the batch's
   mean prediction re-weighted by ``1 / n_hat_c^p`` (:func:`entropy_regulariser`, ``p = 1.1``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .metrics import hungarian_map

__all__ = ["entropy_regulariser", "estimate_distribution", "logit_adjustment",
           "sampling_rates", "self_balanced_mask"]


def estimate_distribution(clusters: np.ndarray, labels: np.ndarray, n_known: int,
                          n_classes: int, novel_rank: np.ndarray | None = None) -> np.ndarray:
    """Estimated count of every class from k-means cluster sizes (BaCon sec. 3.2).

    The clusters that the Hungarian map of the labelled images assigns to the known classes
    give the known classes' counts; as the authors' code, the sizes of those clusters are handed
    to the known classes *by rank* (the largest to the class with the most labelled images),
    which is robust to a cluster matched to the wrong class. The remaining clusters' sizes are
    the novel classes' counts.

    Departure from the authors' code: they write the novel counts in descending order into the
    novel slots, which assumes the novel classes are numbered from head to tail (true of their
    CIFAR-LT splits, unknowable in general). Here ``novel_rank`` (e.g. how many images the
    classifier currently predicts in each novel slot) orders them: the largest estimate goes to
    the slot with the most predictions. Without it, the authors' descending order is used.

    Parameters
    ----------
    clusters : array of int, shape (N,)
        k-means cluster id (``0..n_classes-1``) of every training image.
    labels : array of int, shape (N,)
        Class ``0..n_known-1`` of labelled images, ``-1`` for unlabelled ones.
    n_known, n_classes : int
        Known classes ``K_old`` and all classes ``K``.
    novel_rank : array, shape (n_classes - n_known,), optional
        Ordering scores of the novel slots.

    Returns
    -------
    array of float, shape (n_classes,)
        Estimated counts ``n_hat`` (each at least 1).
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(clusters, minlength=n_classes).astype(np.float64)
    lab = labels >= 0
    est = np.ones(n_classes, dtype=np.float64)
    mapping = hungarian_map(labels[lab], clusters[lab]) if lab.any() else {}
    known_clusters = [c for c, k in mapping.items() if 0 <= k < n_known]
    lab_counts = np.bincount(labels[lab], minlength=n_known)[:n_known].astype(np.float64)
    known_sizes = np.sort(sizes[known_clusters])
    order = np.argsort(lab_counts, kind="stable")[len(lab_counts) - len(known_sizes):]
    est[order] = known_sizes
    rest = np.array([c for c in range(n_classes) if c not in set(known_clusters)], dtype=int)
    novel = np.sort(sizes[rest])[::-1][: n_classes - n_known]
    slots = np.arange(n_known, n_known + len(novel))
    if novel_rank is not None:
        slots = n_known + np.argsort(-np.asarray(novel_rank, dtype=np.float64),
                                     kind="stable")[: len(novel)]
    est[slots] = novel
    return np.maximum(est, 1.0)


def logit_adjustment(counts: Tensor, tau: float = 0.5) -> Tensor:
    """``tau log pi_hat`` to subtract from the logits (``pi_hat = counts / sum counts``).

    As the authors' ``compute_est_adjustment``: ``log(pi_hat^tau + 1e-12)``.
    """
    pi = counts.double() / counts.double().sum()
    return torch.log(pi.pow(tau) + 1e-12).to(counts.dtype if counts.is_floating_point()
                                              else torch.float32)


def sampling_rates(counts: Tensor, alpha: float = 0.5) -> Tensor:
    """Self-balanced sampling rate of each class, ``(min_k pi_hat_k / pi_hat_c)^alpha``
    (1 for the rarest class, smaller for frequent ones)."""
    c = counts.double()
    return (c.min() / c).pow(alpha).to(torch.float32)


def self_balanced_mask(probs: Tensor, rates: Tensor,
                       generator: torch.Generator | None = None) -> Tensor:
    """Which unlabelled images enter the soft SupCon term (BaCon sec. 3.3).

    For each predicted class ``c`` (argmax of ``probs``) with ``n_c`` images, ``m_c ~
    Binomial(n_c, rate_c)`` are kept: the ``m_c`` most confident ones (as the authors' code).

    Parameters
    ----------
    probs : Tensor, shape (N, K)
        (Logit-adjusted) class probabilities of the unlabelled images.
    rates : Tensor, shape (K,)
        :func:`sampling_rates`.
    generator : torch.Generator, optional

    Returns
    -------
    Tensor of bool, shape (N,)
    """
    conf, pred = probs.detach().max(dim=1)
    keep = torch.zeros(len(probs), dtype=torch.bool, device=probs.device)
    for c in torch.unique(pred).tolist():
        idx = torch.nonzero(pred == c).flatten()
        p = rates[c].clamp(0, 1).to(torch.float64).cpu().expand(len(idx))
        m = int(torch.bernoulli(p, generator=generator).sum())
        if m:
            top = torch.topk(conf[idx], k=m).indices
            keep[idx[top]] = True
    return keep


def entropy_regulariser(logits: Tensor, counts: Tensor, p: float = 1.1,
                        temperature: float = 0.1) -> Tensor:
    """``log K - H(q_bar)`` with ``q_bar ~ mean_i softmax(z_i / T) / n_hat^p`` normalised
    (BaCon's re-weighted version of SimGCD's mean-entropy maximisation; ``p = 1.1``)."""
    avg = torch.softmax(logits / temperature, dim=1).mean(0)
    avg = avg / counts.to(avg.dtype).pow(p)
    avg = avg / avg.sum()
    return (avg * torch.log(avg.clamp_min(1e-30))).sum() + math.log(len(avg))
