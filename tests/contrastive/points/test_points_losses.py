"""FAC's contrasts and the baselines against loop transcriptions of their equations."""

import math

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.points import (
    SiameseCorrespondence,
    cloud_nt_xent,
    correspondence_loss,
    fac_fgbg_loss,
    fac_region_loss,
    match_within_segments,
    point_info_nce,
    segment_features,
)

pytestmark = pytest.mark.usefixtures("one_thread")
TAU = 0.2


def _cos(a, b):
    return float((a @ b) / (a.norm() * b.norm()))


def _region_ref(za, sa, zb, sb, tau):
    total, n = 0.0, 0
    for i in range(len(za)):
        pos = [j for j in range(len(zb)) if sb[j] == sa[i]]
        if not pos:
            continue
        den = sum(math.exp(_cos(za[i], zb[k]) / tau) for k in range(len(zb)))
        total += -sum(math.log(math.exp(_cos(za[i], zb[p]) / tau) / den) for p in pos) / len(pos)
        n += 1
    return total / n


def _data(seed=0, na=12, nb=20, d=6):
    g = torch.Generator().manual_seed(seed)
    za = torch.randn(na, d, generator=g, dtype=torch.float64)
    zb = torch.randn(nb, d, generator=g, dtype=torch.float64)
    sa = torch.randint(0, 4, (na,), generator=g)
    sb = torch.randint(-1, 5, (nb,), generator=g)
    return za, sa, zb, sb


@pytest.mark.parametrize("chunk", [None, 5])
def test_region_loss_matches_loop(chunk):
    za, sa, zb, sb = _data()
    za.requires_grad_(True)
    got = fac_region_loss(za, sa, zb, sb, TAU, chunk)
    assert got.item() == pytest.approx(_region_ref(za.detach(), sa, zb, sb, TAU), rel=1e-9)
    got.backward()
    assert torch.isfinite(za.grad).all()


def test_fgbg_loss_matches_loop():
    za, _, zb, _ = _data(1, 7, 7)
    fg = torch.tensor([True, True, False, True, False, False, True])
    got = fac_fgbg_loss(za, zb, fg, TAU)
    terms = []
    for i in range(7):
        if not fg[i]:
            continue
        den = math.exp(_cos(za[i], zb[i]) / TAU) + sum(
            math.exp(_cos(za[i], zb[j]) / TAU) for j in range(7) if not fg[j])
        terms.append(-math.log(math.exp(_cos(za[i], zb[i]) / TAU) / den))
    assert got.item() == pytest.approx(sum(terms) / len(terms), rel=1e-9)


def test_fgbg_ignores_other_foreground_segments():
    za, _, zb, _ = _data(2, 4, 4)
    fg = torch.tensor([True, True, False, False])
    base = fac_fgbg_loss(za, zb, fg, TAU)
    zb2 = zb.clone()
    zb2[1] = za[0] * 3  # another foreground segment made very similar to anchor 0
    moved = fac_fgbg_loss(za, zb2, fg, TAU, )
    # anchor 0's term is unchanged: foreground segment 1 is no negative of it
    per = [fac_fgbg_loss(za[[0, 2, 3]], z[[0, 2, 3]], fg[[0, 2, 3]], TAU) for z in (zb, zb2)]
    assert per[0].item() == pytest.approx(per[1].item())
    assert moved.item() != pytest.approx(base.item())  # anchor 1's own positive moved


def test_segment_features_mean():
    z = torch.arange(12, dtype=torch.float64).reshape(6, 2)
    seg = torch.tensor([0, 2, 0, -1, 2, 2])
    f, present = segment_features(z, seg, 3)
    torch.testing.assert_close(f[0], z[[0, 2]].mean(0))
    torch.testing.assert_close(f[2], z[[1, 4, 5]].mean(0))
    assert present.tolist() == [True, False, True]


def test_correspondence_loss_matches_loop():
    za, sa, zb, sb = _data(3)
    match = match_within_segments(za, sa, zb, sb)
    terms = []
    for i in range(len(za)):
        cands = [j for j in range(len(zb)) if sb[j] == sa[i]]
        if not cands:
            assert match[i] == -1
            continue
        m = max(cands, key=lambda j: _cos(za[i], zb[j]))
        assert match[i] == m
        den = sum(math.exp(_cos(za[i], zb[k]) / TAU) for k in range(len(zb)))
        terms.append(-math.log(math.exp(_cos(za[i], zb[m]) / TAU) / den))
    got = correspondence_loss(za, sa, zb, sb, TAU, chunk_size=4)
    assert got.item() == pytest.approx(sum(terms) / len(terms), rel=1e-9)


def test_siamese_module_shared_weights_and_attention():
    torch.manual_seed(0)
    scn = SiameseCorrespondence(5).double()
    f1, f2 = torch.randn(6, 5, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)
    g1, g2 = scn(f1, f2)
    torch.testing.assert_close(g1, f1)  # zero-initialised output: identity at start
    torch.nn.init.normal_(scn.out.weight)
    g1, g2 = scn(f1, f2)
    h2, h1 = scn(f2, f1)  # Siamese: swapping the views swaps the outputs
    torch.testing.assert_close(g1, h1)
    torch.testing.assert_close(g2, h2)
    # loop transcription of g_i = f_i + W_o (Attn(f_i, f1) + Attn(f_i, f2)) + b_o
    q, k, v = scn.q.weight, scn.k.weight, scn.v.weight
    i = 2

    def attn(x, others):
        w = torch.stack([(q @ x) @ (k @ o) / math.sqrt(5) for o in others])
        return (w.softmax(0)[:, None] * torch.stack([v @ o for o in others])).sum(0)

    ref = f1[i] + scn.out.weight @ (attn(f1[i], f1) + attn(f1[i], f2)) + scn.out.bias
    torch.testing.assert_close(g1[i], ref)


def test_point_info_nce_matches_loop():
    za, _, zb, _ = _data(4, 9, 9)
    got = point_info_nce(za, zb, 0.4, chunk_size=2)
    terms = [-math.log(math.exp(_cos(za[i], zb[i]) / 0.4)
                       / sum(math.exp(_cos(za[i], zb[j]) / 0.4) for j in range(9)))
             for i in range(9)]
    assert got.item() == pytest.approx(sum(terms) / 9, rel=1e-9)


def test_cloud_nt_xent_matches_loop():
    za, _, zb, _ = _data(5, 4, 4)
    z = torch.cat([za, zb])
    terms = []
    for i in range(8):
        p = (i + 4) % 8
        den = sum(math.exp(_cos(z[i], z[j]) / 0.5) for j in range(8) if j != i)
        terms.append(-math.log(math.exp(_cos(z[i], z[p]) / 0.5) / den))
    assert cloud_nt_xent(za, zb, 0.5).item() == pytest.approx(sum(terms) / 8, rel=1e-9)
    assert F is not None
