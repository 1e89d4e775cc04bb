"""HiCLR's growing augmentations: the order of the levels and each operation's strength."""

import math

import pytest
import torch

from medcl.contrastive.sequences.skeleton import augment as A
from medcl.contrastive.sequences.skeleton.graph import LAYOUTS

pytestmark = pytest.mark.usefixtures("one_thread")


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_levels_grow_in_order():
    names = A.GrowingAugment(LAYOUTS["ntu25"].flip).level_names()
    assert names[0] == ["temporal_crop", "shear"]
    assert names[1] == names[0] + ["spatial_flip", "rotate", "gaussian_noise", "gaussian_blur",
                                   "axis_mask"]
    assert names[2] == names[1] + ["joint_mask"]
    for weak, strong in zip(names, names[1:], strict=False):
        assert strong[: len(weak)] == weak  # each level extends the one before


def test_paper_strengths():
    s = A.AugmentStrengths()
    assert (s.padding_ratio, s.shear, s.flip_p, s.rotate_main_degrees, s.noise_std,
            s.blur_kernel, s.blur_sigma, s.axis_mask_p, s.joint_mask_ratio) == \
        (6, 0.5, 0.5, 30.0, 0.01, 15, (0.1, 2.0), 0.5, 0.1)


def test_level_apply_calls_ops_in_order(monkeypatch):
    calls = []
    aug = A.GrowingAugment(None)
    basic, extra = aug.ops()

    def record(name):
        def op(x, g):
            calls.append(name)
            return x
        return op

    wrapped = ([(n, record(n)) for n, _ in basic], [(n, record(n)) for n, _ in extra])
    monkeypatch.setattr(aug, "ops", lambda: wrapped)
    aug.apply(torch.zeros(1, 3, 4, 2, 1), 1)
    assert calls == aug.level_names()[1]


def test_temporal_crop_is_a_window_of_the_mirrored_sequence():
    t = 12
    x = torch.arange(t, dtype=torch.float).view(1, 1, t, 1, 1).repeat(50, 1, 1, 1, 1)
    y = A.temporal_crop(x, 6, _g())
    pad = t // 6
    ref = torch.cat([x[0, 0, :pad].flip(0), x[0, 0], x[0, 0, -pad:].flip(0)]).flatten()
    starts = set()
    for row in y[:, 0, :, 0, 0]:
        s = next(s for s in range(2 * pad + 1) if torch.equal(ref[s:s + t], row))
        starts.add(s)
    assert starts == set(range(2 * pad + 1))  # every offset in [0, 2 pad] occurs


def test_shear_matrix_bounds():
    eye = torch.eye(3).view(1, 3, 3, 1, 1).permute(0, 1, 3, 2, 4)  # joints = basis vectors
    x = eye.expand(400, 3, 1, 3, 1).contiguous()  # (N, C, T=1, V=3, M=1)
    y = A.shear(x, 0.5, _g())
    m = y[:, :, 0, :, 0]  # (N, 3, 3): column v = image of basis vector v
    diag = torch.diagonal(m, dim1=1, dim2=2)
    torch.testing.assert_close(diag, torch.ones_like(diag))
    off = m[:, ~torch.eye(3, dtype=torch.bool)]
    assert off.abs().max() <= 0.5 and off.abs().max() > 0.45


def test_rotation_angles_and_norms():
    x = torch.randn(300, 3, 4, 5, 1)
    y = A.random_rotate(x, 30.0, 1.0, _g())
    torch.testing.assert_close(y.norm(dim=1), x.norm(dim=1), rtol=1e-4, atol=1e-5)
    # the angle between a vector and its image is at most ~ 30 + 2 x 1 degrees
    cos = (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1))
    worst = math.degrees(math.acos(float(cos.min().clamp(-1, 1))))
    assert 20 < worst <= 32.5


def test_noise_std_and_probability():
    x = torch.zeros(400, 3, 10, 5, 1)
    y = A.gaussian_noise(x, 0.01, 0.5, _g())
    noisy = y.flatten(1).abs().sum(1) > 0
    assert 0.35 < noisy.float().mean() < 0.65
    assert abs(float(y[noisy].std()) - 0.01) < 0.001


def test_blur_keeps_constants_and_smooths():
    x = torch.full((20, 3, 30, 4, 1), 2.5)
    torch.testing.assert_close(A.gaussian_blur(x, p=1.0, generator=_g()), x)
    spike = torch.zeros(20, 1, 31, 1, 1)
    spike[:, :, 15] = 1
    y = A.gaussian_blur(spike, p=1.0, generator=_g())
    torch.testing.assert_close(y.sum(2), torch.ones(20, 1, 1, 1))  # mass preserved
    peak = y[:, 0, 15, 0, 0]
    assert (peak <= 1 + 1e-6).all() and peak.mean() < 0.9  # sigma ~ U(0.1, 2)


def test_axis_mask_zeroes_one_axis():
    x = torch.ones(300, 3, 4, 5, 1)
    y = A.axis_mask(x, p=1.0, generator=_g())
    zeroed = (y == 0).all(dim=(2, 3, 4)).sum(1)
    assert (zeroed == 1).all()
    y = A.axis_mask(x, p=0.5, generator=_g())
    frac = float(((y == 0).all(dim=(2, 3, 4)).sum(1) == 1).float().mean())
    assert 0.35 < frac < 0.65


def test_joint_mask_ratio_and_token():
    x = torch.ones(4, 3, 6, 25, 2)
    token = torch.tensor([7.0])
    y, keep = A.joint_mask(x, 0.1, token, _g())
    assert ((~keep).sum(3) == 2).all()  # int(25 x 0.1) joints in every frame
    masked = ~keep.expand_as(y)
    assert (y[masked] == 7.0).all() and (y[~masked] == 1.0).all()


def test_flip_permutes_left_and_right():
    flip = LAYOUTS["ntu25"].flip
    x = torch.arange(25, dtype=torch.float).view(1, 1, 1, 25, 1).repeat(2, 1, 1, 1, 1)
    y = A.spatial_flip(x, flip, p=1.0, generator=_g())
    assert y[0, 0, 0, :, 0].tolist() == [float(i) for i in flip]
    assert torch.equal(A.spatial_flip(x, None, p=1.0), x)
