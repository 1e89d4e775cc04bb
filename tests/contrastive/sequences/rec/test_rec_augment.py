"""CL4SRec's crop / mask / reorder: lengths, contents and the two-different-operations rule."""

import numpy as np
import pytest

from medcl.contrastive.sequences.rec.augment import (
    AugmentRatios,
    crop,
    mask,
    reorder,
    two_views,
)

SEQ = list(range(1, 11))


def test_crop_is_a_contiguous_run_of_floor_eta_n():
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = crop(SEQ, rng, 0.5)
        assert len(out) == 5
        start = SEQ.index(out[0])
        assert out == SEQ[start:start + 5]
    assert crop([4, 5], rng, 0.2) in ([4], [5])  # at least one item


def test_mask_replaces_floor_gamma_n_items():
    rng = np.random.default_rng(0)
    out = mask(SEQ, rng, 0.3, token=99)
    assert len(out) == 10 and out.count(99) == 3
    assert all(o == s for o, s in zip(out, SEQ, strict=True) if o != 99)


def test_reorder_permutes_one_run_only():
    rng = np.random.default_rng(1)
    out = reorder(SEQ, rng, 0.5)
    assert sorted(out) == SEQ
    changed = [i for i, (o, s) in enumerate(zip(out, SEQ, strict=True)) if o != s]
    assert not changed or changed[-1] - changed[0] < 5


def test_two_views_use_two_different_operations():
    rng = np.random.default_rng(2)
    ratios = AugmentRatios(eta=0.5, gamma=0.5, beta=0.8)
    a, b = two_views([SEQ] * 200 + [[3]], rng, mask_token=99, ratios=ratios)

    def kind(v):
        if len(v) == 5:
            return "crop"
        if 99 in v:
            return "mask"
        return "reorder"

    kinds = [(kind(x), kind(y)) for x, y in zip(a[:200], b[:200], strict=True)]
    assert all(k1 != k2 for k1, k2 in kinds)
    assert {k for pair in kinds for k in pair} == {"crop", "mask", "reorder"}
    assert a[-1] == b[-1] == [3]  # one item: left as it is


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_extreme_ratios(ratio):
    rng = np.random.default_rng(0)
    assert sorted(reorder(SEQ, rng, ratio)) == SEQ
    assert mask(SEQ, rng, ratio, 0).count(0) == int(10 * ratio)
