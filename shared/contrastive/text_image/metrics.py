"""Retrieval and generation metrics over embeddings (no file format, no download).

- ``retrieval_recalls``: R@K image -> text and text -> image and their sum ``rSum`` (the
  image-text matching protocol of VSE++ / SCAN / DBL; an image query is right when any of its
  captions is in the top K).
- ``frechet_distance``: ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (Heusel et al.
  2017, the formula of FID) between two feature sets. Computed with feature extractors trained
  here it is an *in-domain* Fréchet distance, not FID: numbers are comparable only within one
  extractor.
- ``r_precision``: AttnGAN's R-precision (Xu et al. 2018, §4): for each generated image, its
  own description ranked against ``n_candidates - 1`` mismatched ones by cosine similarity;
  the share ranked first (r = 1 relevant of R = 1).
"""

from __future__ import annotations

import numpy as np


def retrieval_recalls(scores: np.ndarray, caption_image: np.ndarray,
                      ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """R@K in percent both ways and ``rsum``.

    Parameters
    ----------
    scores : array, shape (N_images, N_captions)
        Similarity of every image and caption.
    caption_image : array of int, shape (N_captions,)
        The image (row) each caption describes; every image needs at least one caption.
    """
    scores = np.asarray(scores, dtype=np.float64)
    caption_image = np.asarray(caption_image)
    n_img, n_cap = scores.shape
    if caption_image.shape != (n_cap,):
        raise ValueError(f"caption_image needs shape ({n_cap},), got {caption_image.shape}")
    match = caption_image[None, :] == np.arange(n_img)[:, None]       # (N_img, N_cap)
    if not match.any(axis=1).all():
        raise ValueError("every image needs at least one caption")
    order = np.argsort(-scores, axis=1, kind="stable")
    i2t_rank = np.argmax(np.take_along_axis(match, order, axis=1), axis=1)  # best caption
    order_t = np.argsort(-scores.T, axis=1, kind="stable")
    t2i_rank = np.argmax(order_t == caption_image[:, None], axis=1)
    out: dict[str, float] = {}
    for k in ks:
        out[f"i2t_r{k}"] = 100.0 * float(np.mean(i2t_rank < k))
    for k in ks:
        out[f"t2i_r{k}"] = 100.0 * float(np.mean(t2i_rank < k))
    out["rsum"] = float(sum(out.values()))
    return out


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of Gaussians fitted to feature sets ``a`` (N, D) and ``b`` (M, D)."""
    from scipy import linalg

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (N, D) feature sets with N >= 2, got {a.shape}, {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root, _ = linalg.sqrtm(s_a @ s_b, disp=False)
    if not np.isfinite(root).all():  # singular product: regularise as pytorch-fid does
        eps = 1e-6 * np.eye(len(s_a))
        root = linalg.sqrtm((s_a + eps) @ (s_b + eps))
    root = np.real(root)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b)
                 - 2.0 * np.trace(root))


def r_precision(image_feats: np.ndarray, text_feats: np.ndarray, labels: np.ndarray,
                pool_feats: np.ndarray, pool_labels: np.ndarray, n_candidates: int = 100,
                seed: int = 0) -> float:
    """Share of images whose own text ``text_feats[i]`` scores highest among it and up to
    ``n_candidates - 1`` pool texts of another label (cosine similarity).

    ``image_feats``, ``text_feats`` (N, D); ``labels`` (N,); ``pool_feats`` (M, D) with
    ``pool_labels`` (M,).
    """
    rng = np.random.default_rng(seed)

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    img, txt, pool = unit(image_feats), unit(text_feats), unit(pool_feats)
    hits = []
    for i in range(len(img)):
        others = np.flatnonzero(np.asarray(pool_labels) != labels[i])
        take = rng.choice(others, size=min(n_candidates - 1, len(others)), replace=False)
        true = img[i] @ txt[i]
        hits.append(bool(np.all(true > pool[take] @ img[i])))
    return float(np.mean(hits))
