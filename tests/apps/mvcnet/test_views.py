import math

import numpy as np
import pytest
import scipy.signal
import torch

from medcl.mvcnet.views import (
    DEFAULT_VIEWS,
    VIEW_NAMES,
    ViewPipeline,
    analytic_signal,
    make_view,
    mirror_channel,
    mirror_class_map,
    reflection_permutation,
)

BNCI2014001 = [
    "Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2",
    "C4", "C6", "CP3", "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz",
]  # fmt: skip
LR = ["left_hand", "right_hand"]


def view(name, ch_names=("C3", "Cz", "C4"), sfreq=250.0, classes=LR, **params):
    return make_view(name, ch_names=list(ch_names), sfreq=sfreq, classes=list(classes), **params)


def batch(b=8, c=3, t=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, t, generator=g) * 10.0, torch.arange(b) % 2


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_names_and_unknown_view():
    assert set(DEFAULT_VIEWS) <= set(VIEW_NAMES) and len(VIEW_NAMES) == 9
    with pytest.raises(ValueError) as err:
        view("rotate")
    assert all(n in str(err.value) for n in VIEW_NAMES)
    with pytest.raises(ValueError, match="std"):
        view("noise", sigma=0.3)


@pytest.mark.parametrize("name", VIEW_NAMES)
def test_every_view_keeps_shapes_inputs_and_order_of_labels(name):
    x, y = batch()
    x0, y0 = x.clone(), y.clone()
    xv, yv = view(name)(x, y, generator=gen())
    assert xv.shape == x.shape and xv.dtype == x.dtype and yv.shape == y.shape
    torch.testing.assert_close(x, x0)  # inputs untouched
    torch.testing.assert_close(y, y0)
    assert torch.isfinite(xv).all()


def test_flip_scale_noise():
    x, y = batch()
    xf, yf = view("flip")(x, y)
    torch.testing.assert_close(xf, -x)
    assert torch.equal(yf, y)

    xs, _ = view("scale")(x, y, generator=gen())
    ratio = xs / x
    per_trial = ratio[:, :1, :1]
    torch.testing.assert_close(ratio, per_trial.expand_as(ratio))  # one factor per trial
    assert (per_trial >= 0.8).all() and (per_trial <= 1.2).all()
    assert per_trial.std() > 0.01

    xn, _ = view("noise", std=0.1)(x, y, generator=gen())
    rel = (xn - x).std(dim=(1, 2)) / x.std(dim=(1, 2))
    assert torch.allclose(rel, torch.full_like(rel, 0.1), atol=0.01)
    xn0, _ = view("noise", std=0.0)(x, y, generator=gen())
    torch.testing.assert_close(xn0, x)


def test_mask_zeroes_one_segment_of_the_right_length():
    x, y = batch(b=16, t=1000)
    xm, _ = view("mask", fraction=0.1)(x, y, generator=gen())
    zero = (xm == 0).all(dim=1)  # (B, T): all channels zeroed
    assert torch.equal(zero.sum(1), torch.full((16,), 100))
    for row in zero:  # one contiguous segment
        idx = torch.nonzero(row).flatten()
        assert idx[-1] - idx[0] == 99
    kept = ~zero
    torch.testing.assert_close(xm.transpose(1, 2)[kept], x.transpose(1, 2)[kept])
    starts = zero.float().argmax(1)
    assert starts.unique().numel() > 1


def test_analytic_signal_matches_scipy():
    x = torch.randn(2, 3, 101, dtype=torch.float64)
    for n in (None, 128, 131):
        ours = analytic_signal(x, n).numpy()
        ref = scipy.signal.hilbert(x.numpy(), N=n, axis=-1)
        np.testing.assert_allclose(ours, ref, atol=1e-10)


@pytest.mark.parametrize("sfreq", [250.0, 512.0])
@pytest.mark.parametrize("shift", [2.0, -3.0])
def test_freq_shift_moves_a_sinusoid_by_delta_hz(sfreq, shift):
    n = int(4 * sfreq)  # 4 s -> 0.25 Hz resolution
    t = torch.arange(n, dtype=torch.float64) / sfreq
    x = torch.sin(2 * math.pi * 10.0 * t).repeat(2, 3, 1).float()
    y = torch.tensor([0, 1])
    xv, yv = view("freq_shift", sfreq=sfreq, delta_hz=shift)(x, y)
    assert torch.equal(yv, y)
    freqs = torch.fft.rfftfreq(n, 1 / sfreq)
    peak = freqs[torch.fft.rfft(xv.double(), dim=-1).abs().argmax(-1)]
    resolution = sfreq / n
    assert torch.all((peak - (10.0 + shift)).abs() <= resolution), peak
    # the amplitude is preserved away from the edges
    mid = xv[..., n // 4 : 3 * n // 4]
    assert torch.allclose(mid.abs().amax(-1), torch.ones(2, 3), atol=0.05)


def test_freq_shift_random_stays_within_range_and_default_is_small():
    fs, n = 250.0, 1000
    t = torch.arange(n) / fs
    x = torch.sin(2 * math.pi * 10.0 * t).repeat(32, 1, 1)
    y = torch.zeros(32, dtype=torch.long)
    xv, _ = view("freq_shift", ch_names=["Cz"], delta_hz=2.0, randomize=True)(x, y, generator=gen())
    peak = torch.fft.rfftfreq(n, 1 / fs)[torch.fft.rfft(xv[:, 0]).abs().argmax(-1)]
    assert ((peak >= 8.0 - 0.25) & (peak <= 12.0 + 0.25)).all()
    assert peak.unique().numel() > 3
    xd, _ = view("freq_shift", ch_names=["Cz"])(x, y)  # default: the authors' +0.1 Hz
    expected = torch.sin(2 * math.pi * 10.1 * t)
    mid = slice(n // 4, 3 * n // 4)
    torch.testing.assert_close(xd[:, 0, mid], expected[mid].expand(32, -1), atol=0.03, rtol=0)


def test_ft_surrogate_keeps_the_amplitude_spectrum_and_changes_phases():
    for t in (500, 501):
        x, y = batch(t=t)
        xv, _ = view("ft_surrogate")(x, y, generator=gen())
        spec, spec_v = torch.fft.rfft(x.double()), torch.fft.rfft(xv.double())
        torch.testing.assert_close(spec_v.abs(), spec.abs(), rtol=1e-4, atol=1e-3)
        assert (xv - x).abs().mean() > 0.1 * x.abs().mean()
        # same phase rotation for all channels by default
        rot = spec_v / spec
        torch.testing.assert_close(rot[:, 1:], rot[:, :1].expand_as(rot[:, 1:]), rtol=0, atol=1e-3)
    xv0, _ = view("ft_surrogate", phase_noise=0.0)(x, y, generator=gen())
    torch.testing.assert_close(xv0, x, atol=1e-4, rtol=0)


def test_mirror_class_map_knows_common_left_right_names():
    from medcl.io import ConfigError

    for pair in (["lh", "rh"], ["L", "R"], ["hand_l", "hand_r"], ["Left-Hand", "right hand"]):
        assert mirror_class_map(pair) == [1, 0], pair
        assert mirror_class_map([*pair, "feet"]) == [1, 0, 2], pair
    assert mirror_class_map(["feet", "tongue"]) == [0, 1]  # nothing lateral: unchanged
    for ambiguous in (["a", "b"], ["class1", "class2", "feet"], ["left", "dx"]):
        with pytest.raises(ConfigError, match="left/right in --events"):
            mirror_class_map(ambiguous)
    with pytest.raises(ConfigError):  # where a run configures the reflection view
        view("reflect", classes=["a", "b"])


def test_mirror_channel_and_class_map():
    assert mirror_channel("C3") == "C4" and mirror_channel("C4") == "C3"
    assert mirror_channel("FC1") == "FC2" and mirror_channel("CP4") == "CP3"
    assert mirror_channel("C5") == "C6" and mirror_channel("Fp1") == "Fp2"
    assert mirror_channel("T7") == "T8" and mirror_channel("PO10") == "PO9"
    for mid in ("Cz", "FCz", "POz", "EOG-left", "STI 014"):
        assert mirror_channel(mid) is None
    assert mirror_class_map(["left_hand", "right_hand", "feet", "tongue"]) == [1, 0, 2, 3]
    assert mirror_class_map(["RightHand", "Left Hand"]) == [1, 0]
    assert mirror_class_map(["right_hand", "feet"]) == [0, 1]


def test_reflect_swaps_hemispheres_and_left_right_labels():
    classes = ["left_hand", "right_hand", "feet", "tongue"]
    x, _ = batch(b=4, c=len(BNCI2014001))
    y = torch.tensor([0, 1, 2, 3])
    xv, yv = view("reflect", ch_names=BNCI2014001, classes=classes)(x, y)
    assert yv.tolist() == [1, 0, 2, 3]
    i = {n: k for k, n in enumerate(BNCI2014001)}
    for a, b in [("C3", "C4"), ("FC1", "FC2"), ("CP3", "CP4"), ("C5", "C6"), ("P1", "P2")]:
        torch.testing.assert_close(xv[:, i[a]], x[:, i[b]])
        torch.testing.assert_close(xv[:, i[b]], x[:, i[a]])
    for mid in ("Fz", "FCz", "Cz", "CPz", "Pz", "POz"):
        torch.testing.assert_close(xv[:, i[mid]], x[:, i[mid]])
    xvv, yvv = view("reflect", ch_names=BNCI2014001, classes=classes)(xv, yv)
    torch.testing.assert_close(xvv, x)  # an involution
    assert torch.equal(yvv, y)


def test_reflect_keeps_unpaired_channels_and_absent_mirror_classes():
    names = ["C3", "Cz", "C4", "CP5", "FC2", "EOG1"]  # CP5, FC2 lack a partner; EOG1 odd
    perm = reflection_permutation(names)
    assert perm == [2, 1, 0, 3, 4, 5]
    x, _ = batch(b=4, c=len(names))
    y = torch.tensor([0, 1, 0, 1])
    xv, yv = view("reflect", ch_names=names, classes=["right_hand", "feet"])(x, y)
    torch.testing.assert_close(xv, x[:, perm])
    assert torch.equal(yv, y)  # right hand vs feet: labels kept
    explicit = reflection_permutation(names, pairs=[("CP5", "FC2")])
    assert explicit == [0, 1, 2, 4, 3, 5]
    with pytest.raises(ValueError, match="CP6"):
        reflection_permutation(names, pairs=[("CP5", "CP6")])


def test_reflect_refuses_to_swap_labels_without_channel_pairs():
    with pytest.raises(ValueError, match="no left/right channel pair"):
        view("reflect", ch_names=["EEG-0", "EEG-1", "EEG-2"])
    view("reflect", ch_names=["EEG-0", "EEG-1"], classes=["rest", "feet"])  # identity is fine
    with pytest.raises(ValueError, match="channels"):
        view("reflect")(*batch(c=4))


def test_half_mix_mixes_only_within_class():
    b, t = 12, 100
    x = torch.arange(b, dtype=torch.float32)[:, None, None].expand(b, 3, t).clone()
    y = torch.tensor([0, 1, 2] * 3 + [0, 1, 3])  # class 3 has a single trial
    xv, yv = view("half_mix", classes=["a", "b", "c", "d"])(x, y, generator=gen())
    assert torch.equal(yv, y)
    torch.testing.assert_close(xv[..., : t // 2], x[..., : t // 2])  # first half kept
    donor = xv[:, 0, t // 2 :]
    assert (donor == donor[:, :1]).all()  # one donor trial per trial
    donor = donor[:, 0].long()
    assert torch.equal(y[donor], y)  # same class
    lone = int(torch.nonzero(y == 3))
    assert donor[lone] == lone
    others = torch.nonzero(y != 3).flatten()
    assert (donor[others] != others).all()  # a different trial when one exists


def test_half_mix_hemisphere_mode_replaces_the_ipsilateral_hemisphere():
    names = ["C3", "Cz", "C4", "CP1", "CP2"]
    b = 8
    x = torch.arange(b, dtype=torch.float32)[:, None, None].expand(b, len(names), 20).clone()
    y = torch.tensor([0, 1] * 4)
    xv, _ = view("half_mix", ch_names=names, mode="hemisphere")(x, y, generator=gen())
    left, mid, right = [0, 3], [1], [2, 4]
    for i in range(b):
        swapped, kept = (left, mid + right) if y[i] == 0 else (right, left + mid)
        assert (xv[i, kept] == i).all()
        donor = xv[i, swapped, 0]
        assert (donor == donor[0]).all() and donor[0] != i and y[int(donor[0])] == y[i]
    with pytest.raises(ValueError, match="mode"):
        view("half_mix", mode="space")


def test_ch_dropout_zeroes_whole_channels_at_rate_p():
    x, y = batch(b=64, c=20, t=50)
    xv, _ = view("ch_dropout", ch_names=[f"E{i}" for i in range(20)], p=0.1)(x, y, generator=gen())
    dropped = (xv == 0).all(-1)
    kept = ~dropped
    torch.testing.assert_close(xv[kept], x[kept])
    assert 0.06 < dropped.float().mean() < 0.14


def test_seeded_generator_is_deterministic():
    x, y = batch()
    for name in VIEW_NAMES:
        v = view(name)
        a, _ = v(x, y, generator=gen(3))
        b, _ = v(x, y, generator=gen(3))
        torch.testing.assert_close(a, b)
    names = ["noise", "scale", "mask", "ft_surrogate", "ch_dropout", "half_mix"]
    p1 = ViewPipeline(names, ["C3", "Cz", "C4"], 250.0, LR, seed=7)
    p2 = ViewPipeline(names, ["C3", "Cz", "C4"], 250.0, LR, seed=7)
    p3 = ViewPipeline(names, ["C3", "Cz", "C4"], 250.0, LR, seed=8)
    out1, out2, out3 = p1(x, y), p2(x, y), p3(x, y)
    for (a, _), (b, _), (c, _) in zip(out1, out2, out3, strict=True):
        torch.testing.assert_close(a, b)
        assert not torch.equal(a, c)
    nxt = p1(x, y)  # the generator advances between batches
    assert not torch.equal(nxt[0][0], out1[0][0])


def test_pipeline_applies_each_view_to_the_original_batch():
    x, y = batch(c=3)
    pipe = ViewPipeline(
        DEFAULT_VIEWS, ["C3", "Cz", "C4"], 250.0, LR, seed=0, params={"freq_shift": {"delta_hz": 1}}
    )
    assert len(pipe) == 3
    text = repr(pipe)
    assert text.startswith("ViewPipeline(") and "SignFlip()" in text and "delta_hz=1.0" in text
    out = pipe(x, y)
    assert len(out) == 3
    torch.testing.assert_close(out[0][0], -x)
    torch.testing.assert_close(out[2][0], x[:, [2, 1, 0]])
    assert torch.equal(out[2][1], 1 - y)
    with pytest.raises(ValueError, match="not in the pipeline"):
        ViewPipeline(["flip"], ["C3"], 250.0, LR, params={"noise": {"std": 1}})


def test_channel_maps_describe_flip_and_reflection_exactly():
    x, y = batch(c=len(BNCI2014001))
    pipe = ViewPipeline(VIEW_NAMES, BNCI2014001, 250.0, LR, seed=0)
    maps = pipe.channel_maps(len(BNCI2014001))
    assert [m is not None for m in maps] == [n in ("flip", "reflect") for n in VIEW_NAMES]
    for (xv, _), m in zip(pipe(x, y), maps, strict=True):
        if m is not None:
            perm, sign = m
            torch.testing.assert_close(xv, x[:, perm] * torch.tensor(sign)[:, None])
    with pytest.raises(ValueError, match="22 channels"):
        pipe.channel_maps(3)
