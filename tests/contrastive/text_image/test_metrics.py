"""Retrieval recalls on a hand case, the Fréchet distance against its closed form for
diagonal covariances, R-precision on a hand case; the tokenizer."""

import numpy as np
import pytest

from medcl.contrastive.text_image import Vocab, frechet_distance, r_precision, retrieval_recalls


def test_recalls_hand_case():
    # 3 images, 4 captions (caption 3 also describes image 0)
    scores = np.array([[0.9, 0.1, 0.2, 0.3],
                       [0.8, 0.2, 0.7, 0.0],
                       [0.1, 0.9, 0.3, 0.1]])
    cap_img = np.array([0, 1, 2, 0])
    r = retrieval_recalls(scores, cap_img, ks=(1, 2))
    # image 0 -> caption 0 first (hit); image 1 -> captions ranked 0, 2, 1: rank 2 (miss @1,2)
    # image 2 -> captions 1, 2: caption 2 at rank 1 (hit @2)
    assert r["i2t_r1"] == pytest.approx(100 / 3) and r["i2t_r2"] == pytest.approx(200 / 3)
    # caption 0 -> images 0, 1: hit; caption 1 -> image 2 first, image 1 second: @2;
    # caption 2 -> image 1 first, image 2 second: @2; caption 3 -> image 0 first: hit
    assert r["t2i_r1"] == 50.0 and r["t2i_r2"] == 100.0
    assert r["rsum"] == pytest.approx(100 / 3 + 200 / 3 + 150)


def test_frechet_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 3)) * np.array([1.0, 2.0, 0.5])
    b = rng.normal(1, 1, (20000, 3)) * np.array([2.0, 2.0, 1.0])
    # diagonal covariances: |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2
    want = (4 + 4 + 1) + (1 - 2) ** 2 + 0 + (0.5 - 1) ** 2  # means (2, 2, 1)
    assert frechet_distance(a, b) == pytest.approx(want, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_r_precision_hand_case():
    img = np.array([[1.0, 0.0], [0.0, 1.0]])
    txt = np.array([[1.0, 0.1], [1.0, 0.0]])      # image 1's own text points the wrong way
    pool = np.array([[0.0, 1.0], [1.0, 0.0]])
    pool_labels = np.array([1, 0])
    labels = np.array([0, 1])
    # image 0 vs pool text of label 1 (0, 1): 0.995 > 0 -> hit
    # image 1 vs pool text of label 0 (1, 0): own 0 < 0 fails (ties are misses)
    assert r_precision(img, txt, labels, pool, pool_labels, n_candidates=5) == 0.5


def test_vocab_unknown_and_empty():
    v = Vocab.build(["A red circle.", "a blue square"])
    ids, lengths, unknown = v.batch(["a purple circle", ""], max_len=2)
    assert ids.shape == (2, 2) and lengths.tolist() == [2, 1] and unknown == ["purple"]
