"""The InfoNCE kernel against a loop-by-loop reference of its equation, hand values, textbook
``F.cross_entropy`` formulations, and its own plain PyTorch path (``fast=False``)."""

import math

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.functional import LabelMasks, alignment, info_nce, pair_labels, uniformity


def reference_info_nce(a, b, pos, neg, tau, pw=None, nw=None, pos_in_den=True):
    """The module-docstring equation written as loops (autograd gives the gradients)."""
    losses = []
    for i in range(a.shape[0]):
        s = [a[i] @ b[j] / tau for j in range(b.shape[0])]
        cnt = sum(float(pos[i, j]) for j in range(b.shape[0]))
        if cnt == 0:
            continue
        num = sum(float(pos[i, j]) * (1.0 if pw is None else pw[i, j]) * s[j]
                  for j in range(b.shape[0])) / cnt
        den_terms = []
        for j in range(b.shape[0]):
            w = (float(neg[i, j]) * (1.0 if nw is None else float(nw[i, j]))
                 + (1.0 if pos_in_den and pos[i, j] > 0 else 0.0))
            if w > 0:
                den_terms.append(s[j] + math.log(w))
        losses.append(torch.logsumexp(torch.stack(den_terms), 0) - num)
    return torch.stack(losses).mean()


def _emb(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    return z.requires_grad_(True)


def test_identical_views_give_log_2n_minus_1():
    n, t = 5, 0.5
    z = F.normalize(torch.randn(n, 8, generator=torch.Generator().manual_seed(0),
                                dtype=torch.float64), dim=1)
    both = torch.cat([z, z])
    lab = pair_labels(n)
    loss = info_nce(both, both, LabelMasks(lab, lab, torch.arange(2 * n)), temperature=t)
    # identical views: anchor i's positive is its copy (s = 1/t) and every other item k appears
    # twice in the denominator -> l_i = log(e^{1/t} + 2 sum_{k != i} e^{<z_i, z_k>/t}) - 1/t
    e = torch.exp(z @ z.T / t)
    others = e.sum(1) - e.diagonal()
    want = (torch.log(math.exp(1 / t) + 2 * others) - 1 / t).mean()
    assert loss.item() == pytest.approx(want.item(), abs=1e-12)
    # NT-Xent with every sample equal: exp(s)/sum_{k != i} exp(s) = 1/(2N-1)
    both = torch.ones(2 * n, 4) / 2.0
    loss = info_nce(both, both, LabelMasks(lab, lab, torch.arange(2 * n)), temperature=0.3)
    assert loss.item() == pytest.approx(math.log(2 * n - 1), abs=1e-6)


def test_two_pairs_by_hand():
    # z0 = [1, 0], z1 = [0, 1]; views identical. Anchor 0: pos s=1/t, negatives: self excluded,
    # z1 twice with s=0 -> loss = log(e^{1/t} + 2) - 1/t, the same for all four anchors.
    t = 0.5
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    lab = pair_labels(2)
    loss = info_nce(z, z, LabelMasks(lab, lab, torch.arange(4)), temperature=t)
    assert loss.item() == pytest.approx(math.log(math.exp(1 / t) + 2) - 1 / t, abs=1e-6)
    dcl = info_nce(z, z, LabelMasks(lab, lab, torch.arange(4)), temperature=t,
                   positives_in_denominator=False)
    assert dcl.item() == pytest.approx(math.log(2) - 1 / t, abs=1e-6)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("pos_in_den", [True, False])
@pytest.mark.parametrize("weights", [False, True])
def test_dense_masks_match_loop_reference(pos_in_den, weights, fast):
    na, ns, d, tau = 6, 9, 5, 0.3
    a, b = _emb(na, d, 1), _emb(ns, d, 2)
    g = torch.Generator().manual_seed(3)
    pos = torch.rand(na, ns, generator=g) < 0.3
    pos[0] = False  # an anchor without positives is left out of the mean
    pos[1, 0] = True
    neg = (torch.rand(na, ns, generator=g) < 0.7) & ~pos
    pw = torch.rand(na, ns, generator=g, dtype=torch.float64) + 0.5 if weights else None
    nw = torch.rand(na, ns, generator=g, dtype=torch.float64) + 0.5 if weights else None
    ours = info_nce(a, b, pos, neg, tau, pos_weight=pw, neg_weight=nw,
                    positives_in_denominator=pos_in_den, fast=fast)
    ref = reference_info_nce(a, b, pos, neg, tau, pw, nw, pos_in_den)
    ga = torch.autograd.grad(ours, [a, b])
    gr = torch.autograd.grad(ref, [a, b])
    assert ours.item() == pytest.approx(ref.item(), abs=1e-10)
    for x, y in zip(ga, gr, strict=True):
        torch.testing.assert_close(x, y, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_soft_positive_mask_matches_reference(fast):
    a, b = _emb(4, 3, 4), _emb(7, 3, 5)
    pos = torch.rand(4, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pos[pos < 0.4] = 0
    neg = pos == 0
    ours = info_nce(a, b, pos, neg, 0.2, fast=fast)
    ref = reference_info_nce(a, b, pos, neg, 0.2)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-10)
    for x, y in zip(torch.autograd.grad(ours, [a, b]), torch.autograd.grad(ref, [a, b]),
                    strict=True):
        torch.testing.assert_close(x, y, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("pos_in_den", [True, False])
@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_chunked_equals_unchunked(chunk, pos_in_den):
    n = 13
    z = _emb(2 * n, 16, 6)
    labels = torch.randint(0, 4, (2 * n,), generator=torch.Generator().manual_seed(1))
    masks = LabelMasks(labels, labels, torch.arange(2 * n))
    pw = torch.linspace(0.5, 1.5, 2 * n, dtype=torch.float64)

    def run(c):
        loss = info_nce(z, z, masks, temperature=0.2, chunk_size=c, pos_weight=pw,
                        positives_in_denominator=pos_in_den)
        return loss, torch.autograd.grad(loss, z)[0]

    (l0, g0), (l1, g1) = run(None), run(chunk)
    assert l1.item() == pytest.approx(l0.item(), abs=1e-12)
    torch.testing.assert_close(g1, g0, atol=1e-12, rtol=1e-10)


def test_label_masks_equal_their_dense_form_and_reference():
    z = _emb(10, 4, 7)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 3, 4, 4])
    masks = LabelMasks(labels, labels, torch.arange(10))
    pos, neg = masks.rows(0, 10)
    assert not pos.diagonal().any() and not neg.diagonal().any()
    fast = info_nce(z, z, masks, temperature=0.4)
    dense = info_nce(z, z, pos, neg, temperature=0.4, chunk_size=3)
    ref = reference_info_nce(z, z, pos, neg, 0.4)
    gf, gd, gr = (torch.autograd.grad(x, z)[0] for x in (fast, dense, ref))
    assert fast.item() == pytest.approx(ref.item(), abs=1e-10)
    assert dense.item() == pytest.approx(ref.item(), abs=1e-10)
    torch.testing.assert_close(gf, gr)
    torch.testing.assert_close(gd, gr)


def test_disjoint_anchor_and_sample_labels():
    # anchors whose label no sample has contribute nothing; self_index None
    a, b = _emb(4, 3, 8), _emb(5, 3, 9)
    la, ls = torch.tensor([0, 1, 7, 2]), torch.tensor([0, 0, 1, 2, 3])
    loss = info_nce(a, b, LabelMasks(la, ls), temperature=0.5, reduction="none")
    pos, neg = LabelMasks(la, ls).rows(0, 4)
    assert loss[2].item() == 0.0
    ref = reference_info_nce(a, b, pos, neg, 0.5)
    assert loss.sum().item() / 3 == pytest.approx(ref.item(), abs=1e-10)


# --------------------------------------------------------------------------- fast vs plain


def simclr_cross_entropy(z0, z1, tau):
    """NT-Xent as SimCLR implementations write it: a 2N-way ``F.cross_entropy`` whose class is
    the other view, the anchor itself masked out of the logits."""
    n = z0.shape[0]
    z = torch.cat([F.normalize(z0, dim=1), F.normalize(z1, dim=1)])
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, target)


def supcon_log_softmax(z, labels, tau):
    """SupCon ``L_out`` (Khosla et al. 2020, eq. 2) with ``F.log_softmax`` over all but self."""
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    log_prob = F.log_softmax((z @ z.T / tau).masked_fill(eye, float("-inf")), dim=1)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    per_anchor = -(log_prob.masked_fill(~pos, 0.0)).sum(1) / pos.sum(1)
    return per_anchor[pos.any(1)].mean()


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_ntxent_fast_and_plain_equal_cross_entropy(chunk):
    n, tau = 6, 0.3
    z0, z1 = _emb(n, 8, 10), _emb(n, 8, 11)
    lab = pair_labels(n)
    masks = LabelMasks(lab, lab, torch.arange(2 * n))
    want = simclr_cross_entropy(z0, z1, tau)
    g_want = torch.autograd.grad(want, [z0, z1])
    for fast in (True, False):
        z = F.normalize(torch.cat([z0, z1]), dim=1)
        got = info_nce(z, z, masks, temperature=tau, chunk_size=chunk, fast=fast)
        assert got.item() == pytest.approx(want.item(), abs=1e-12), fast
        for x, y in zip(torch.autograd.grad(got, [z0, z1]), g_want, strict=True):
            torch.testing.assert_close(x, y, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("chunk", [None, 4])
def test_supcon_fast_and_plain_equal_log_softmax(chunk):
    tau = 0.2
    z = _emb(14, 6, 12)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 3, 3, 1, 5, 2, 0, 1])  # class 5 has no positive
    masks = LabelMasks(labels, labels, torch.arange(14))
    want = supcon_log_softmax(z, labels, tau)
    g_want = torch.autograd.grad(want, z)[0]
    for fast in (True, False):
        got = info_nce(z, z, masks, temperature=tau, chunk_size=chunk, fast=fast)
        assert got.item() == pytest.approx(want.item(), abs=1e-12), fast
        torch.testing.assert_close(torch.autograd.grad(got, z)[0], g_want, atol=1e-12,
                                   rtol=1e-10)


def _variant(name):
    """Inputs of one InfoNCE variant: (anchor, sample, pos_mask, kwargs)."""
    g = torch.Generator().manual_seed(13)
    z = _emb(16, 5, 14)
    labels = torch.randint(0, 4, (16,), generator=g)
    masks = LabelMasks(labels, labels, torch.arange(16))
    if name == "ntxent":
        lab = pair_labels(8)
        return z, z, LabelMasks(lab, lab, torch.arange(16)), {}
    if name == "supcon":
        return z, z, masks, {}
    if name == "dcl":
        return z, z, masks, {"positives_in_denominator": False}
    if name == "dclw":
        w = torch.rand(16, generator=g, dtype=torch.float64) + 0.5
        return z, z, masks, {"positives_in_denominator": False, "pos_weight": w}
    a, b = _emb(7, 5, 15), _emb(11, 5, 16)
    pos = torch.rand(7, 11, generator=g) < 0.3
    pos[2] = False  # an anchor without positives
    pos[0, 0] = True
    if name == "dense-weighted":  # weighted negatives, a positive also counted as negative
        neg = torch.rand(7, 11, generator=g) < 0.8
        nw = torch.rand(7, 11, generator=g, dtype=torch.float64) + 0.5
        return a, b, pos, {"neg_mask": neg, "neg_weight": nw}
    if name == "soft":
        soft = torch.rand(7, 11, generator=g, dtype=torch.float64) * pos
        return a, b, soft, {"neg_weight": torch.linspace(0.5, 2.0, 7, dtype=torch.float64)}
    if name == "disjoint-labels":
        la, ls = torch.tensor([0, 1, 7, 2, 1, 0, 3]), torch.randint(0, 4, (11,), generator=g)
        return a, b, LabelMasks(la, ls), {}
    raise ValueError(name)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "name", ["ntxent", "supcon", "dcl", "dclw", "dense-weighted", "soft", "disjoint-labels"]
)
def test_fast_kernel_equals_plain_path(name, reduction):
    a, b, pos, kwargs = _variant(name)
    inputs = [a] if a is b else [a, b]
    plain = info_nce(a, b, pos, temperature=0.25, reduction=reduction, fast=False, **kwargs)
    g_plain = torch.autograd.grad(plain.sum(), inputs)
    assert torch.isfinite(plain).all() and plain.abs().sum() > 0
    for chunk in (None, 1, 3):
        fast = info_nce(a, b, pos, temperature=0.25, reduction=reduction, chunk_size=chunk,
                        **kwargs)
        assert fast.shape == plain.shape and fast.dtype == plain.dtype
        torch.testing.assert_close(fast, plain, atol=1e-12, rtol=1e-10)
        for x, y in zip(torch.autograd.grad(fast.sum(), inputs), g_plain, strict=True):
            torch.testing.assert_close(x, y, atol=1e-12, rtol=1e-10)


def test_plain_path_is_cross_entropy_for_the_infonce_family(monkeypatch):
    """``fast=False`` on NT-Xent/SupCon goes through ``F.cross_entropy``; DCL does not."""
    calls = []
    real = F.cross_entropy

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", spy)
    a, b, pos, kwargs = _variant("supcon")
    info_nce(a, b, pos, temperature=0.5, fast=False, **kwargs)
    assert calls == [1]
    info_nce(a, b, pos, temperature=0.5, **kwargs)  # the fast kernel does not
    a, b, pos, kwargs = _variant("dcl")
    info_nce(a, b, pos, temperature=0.5, fast=False, **kwargs)
    assert calls == [1]


def test_half_precision_inputs_reduce_in_fp32():
    z = F.normalize(torch.randn(8, 4), dim=1)
    lab = pair_labels(4)
    m = LabelMasks(lab, lab, torch.arange(8))
    l32 = info_nce(z, z, m, temperature=0.1)
    l16 = info_nce(z.bfloat16(), z.bfloat16(), m, temperature=0.1)
    assert l16.dtype == torch.bfloat16
    assert l16.float().item() == pytest.approx(l32.item(), rel=2e-2)
    plain16 = info_nce(z.bfloat16(), z.bfloat16(), m, temperature=0.1, fast=False)
    assert plain16.dtype == torch.bfloat16
    assert plain16.float().item() == pytest.approx(l32.item(), rel=2e-2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(anchor=torch.randn(3, 2), sample=torch.randn(3, 4)), "same D"),
        (dict(pos_mask=torch.ones(2, 3, dtype=torch.bool)), "pos_mask has shape"),
        (dict(temperature=0.0), "temperature"),
        (dict(reduction="avg"), "reduction"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(pos_weight=torch.ones(3, 1)), "pos_weight"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(anchor=torch.randn(3, 2), sample=torch.randn(3, 2),
                pos_mask=torch.eye(3, dtype=torch.bool), temperature=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        info_nce(**args)


def test_alignment_and_uniformity_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
    assert alignment(x, y).item() == pytest.approx((4.0 + 0.0) / 2)
    assert alignment(x, y, alpha=1).item() == pytest.approx(1.0)
    # two antipodal points: ||xi - xj||^2 = 4 -> log exp(-2 * 4) = -8
    assert uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])).item() == pytest.approx(-8.0)
    # three points: mean over the 3 pairs
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    want = math.log((math.exp(-4) + math.exp(-8) + math.exp(-4)) / 3)
    assert uniformity(p).item() == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError):
        uniformity(torch.randn(1, 3))
