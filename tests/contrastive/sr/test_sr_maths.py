"""PCL-SR construction and loss against a transcription of the authors' ``nce``; EDSR shapes."""

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.sr import (
    Discriminator,
    blur,
    contrast_loss,
    discriminator_loss,
    edsr_baseline,
    negatives,
    positives,
    sharpen,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _hf_energy(x):
    return float((x - blur(x, 1.0)).pow(2).mean())


def test_positive_negative_construction():
    g = torch.Generator().manual_seed(0)
    hr = (0.5 + 0.2 * torch.randn(2, 3, 16, 16, generator=g)).clamp(0, 1)
    lr = F.interpolate(hr, scale_factor=0.5, mode="bicubic", antialias=True)
    pos, neg = positives(hr), negatives(hr, lr)
    assert pos[0] is hr and len(pos) == 2 and len(neg) == 2
    assert all(t.shape == hr.shape for t in pos + neg)
    assert _hf_energy(pos[1]) > 1.5 * _hf_energy(hr)  # sharpened: more high frequencies
    assert _hf_energy(neg[1]) < 0.5 * _hf_energy(hr)  # blurred: fewer
    assert _hf_energy(neg[0]) < 0.5 * _hf_energy(hr)  # upsampled LR lost them too
    # blur of a constant is the constant; its kernel sums to one
    torch.testing.assert_close(blur(torch.full((1, 1, 9, 9), 0.3)), torch.full((1, 1, 9, 9), 0.3))
    assert float(sharpen(hr).min()) >= 0 and float(sharpen(hr).max()) <= 1


def _nce_reference(sr, hrs, lrs):
    """The authors' ``nce`` transcribed: mean cosine over positions as logits, CE with the
    positive first, averaged over positives."""
    def sim(a, b):
        return (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1).mean(dim=(-1, -2))

    loss = 0.0
    for hr in hrs:
        logits = torch.stack([sim(sr, hr)] + [sim(sr, lr) for lr in lrs], dim=1)
        loss = loss + F.cross_entropy(logits, torch.zeros(len(sr), dtype=torch.long))
    return loss / len(hrs)


def test_contrast_loss_matches_reference():
    g = torch.Generator().manual_seed(1)

    def feats():
        return [torch.randn(3, 4, 5, 5, generator=g, dtype=torch.float64),
                torch.randn(3, 8, 3, 3, generator=g, dtype=torch.float64)]

    sr, p1, p2, n1, n2 = feats(), feats(), feats(), feats(), feats()
    got = contrast_loss(sr, [p1, p2], [n1, n2])
    want = sum(_nce_reference(sr[lv], [p1[lv], p2[lv]], [n1[lv], n2[lv]])
               for lv in range(2)) / 2
    assert float(got) == pytest.approx(float(want), rel=1e-10)
    # gradient through the SR features only
    sr0 = [f.clone().requires_grad_(True) for f in sr]
    contrast_loss(sr0, [p1, p2], [n1, n2]).backward()
    sr1 = [f.clone().requires_grad_(True) for f in sr]
    (sum(_nce_reference(sr1[lv], [p1[lv], p2[lv]], [n1[lv], n2[lv]])
         for lv in range(2)) / 2).backward()
    for a, b in zip(sr0, sr1, strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_edsr_shapes_and_discriminator():
    torch.manual_seed(0)
    for scale in (2, 3, 4):
        net = edsr_baseline(scale, channels=1, n_resblocks=2, n_feats=8)
        assert net(torch.rand(2, 1, 6, 7)).shape == (2, 1, 6 * scale, 7 * scale)
    full = edsr_baseline(2)  # the baseline's size: 16 blocks x 64 channels, about 1.37 M weights
    assert 1.3e6 < sum(p.numel() for p in full.parameters()) < 1.45e6
    with pytest.raises(ValueError):
        edsr_baseline(5)
    disc = Discriminator(1, width=4, levels=3)
    fs = disc(torch.rand(2, 1, 16, 16))
    assert [tuple(f.shape) for f in fs] == [(2, 4, 16, 16), (2, 8, 8, 8), (2, 16, 4, 4)]
    hr = torch.rand(2, 1, 16, 16)
    lr = F.interpolate(hr, scale_factor=0.5, mode="bicubic")
    loss = discriminator_loss(disc, hr, lr, torch.rand(2, 1, 16, 16))
    assert torch.isfinite(loss) and float(loss.detach()) > 0
