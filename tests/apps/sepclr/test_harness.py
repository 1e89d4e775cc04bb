"""The harness: probes, leakage, and a short training that separates digit from texture."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from medcl.sepclr.config import SepCLRConfig
from medcl.sepclr.evaluate import attribute_roles, leakage_summary, probe_table
from medcl.sepclr.harness import holdout_split
from medcl.sepclr.textures import make_digits_on_textures


def test_attribute_roles_from_background_variation():
    attrs = pd.DataFrame({"texture": [0, 1, 0, 1], "texture_name": list("abab"),
                          "digit": [-1, -1, 3, 5], "group": ["b", "b", "t", "t"]})
    is_target = np.array([False, False, True, True])
    assert attribute_roles(attrs, is_target) == {"texture": "common", "digit": "salient"}


def test_probe_table_reads_each_space():
    rng = np.random.default_rng(0)
    n = 200
    is_target = np.arange(n) % 2 == 1
    a = rng.integers(0, 2, n)                      # common attribute, both groups
    b = np.where(is_target, rng.integers(0, 2, n), -1)  # salient attribute, target only
    reps = {"common": np.c_[a + 0.1 * rng.normal(size=n), rng.normal(size=n)],
            "salient": np.c_[np.maximum(b, 0) + 0.1 * rng.normal(size=n), rng.normal(size=n)]}
    attrs = pd.DataFrame({"a": a, "b": b})
    tr, te = holdout_split(is_target, 0.3, 0)
    table = probe_table(reps, attrs, is_target, tr, te)
    acc = table.set_index(["attribute", "group", "space"]).accuracy
    assert acc["a", "target", "common"] == 1.0 and acc["a", "target", "salient"] < 0.75
    assert acc["b", "target", "salient"] == 1.0 and acc["b", "target", "common"] < 0.75
    assert ("b", "background", "common") not in acc.index  # b is constant in the background
    leak = leakage_summary(table).set_index("attribute")
    assert leak.loc["a", "wanted"] == 1.0 and leak.loc["b", "leaked"] < 0.75


def test_holdout_split_is_stratified_by_group():
    is_target = np.arange(100) < 30
    tr, te = holdout_split(is_target, 0.2, 0)
    assert len(te) == 20 and is_target[te].sum() == 6
    assert len(set(tr) & set(te)) == 0


@pytest.mark.slow
def test_short_training_pulls_background_salient_outputs_to_zero():
    """SepCLR's mechanism after a short training with the authors' settings (one pass per
    view, their augmentations, weights 1/1000/1000/10), on held-out images: the
    information-less regulariser (eq. 8) pulls the background's salient outputs towards the
    null vector while the salient uniformity spreads the target's, so background salient
    outputs are shorter and the group is readable from them.

    Only the mechanism is asserted, with wide margins: at this budget which attribute lands
    in which code is within run-to-run noise (issue 11: 0.18 vs 0.17 on one CPU), and a
    learning outcome asserted here must hold on any x86 CPU (Intel and AMD round
    differently). Measured on one CPU (seeds 0 / 1): regulariser 1.20 after epoch 1, 0.19
    after epoch 6; median salient-output norm background / target 0.44 / 0.73 and 0.44 /
    1.00; group from the salient output 0.80 / 0.79 (chance 0.5)."""
    from medcl.sepclr.train import train

    n = 300
    data = make_digits_on_textures(n_background=n, n_target=n, size=32, seed=0)
    images = torch.cat([data.background, data.target])
    is_target = torch.arange(2 * n) >= n
    tr, te = holdout_split(is_target.numpy(), 0.3, 0)
    cfg = SepCLRConfig(encoder="small", widths=[8, 16, 32, 64], common_dim=16, salient_dim=16,
                       batch_size=64, lr=1e-3, epochs=15, seed=0)
    model, history = train(cfg, images[tr], is_target[tr], None, progress=False)
    assert history[-1]["regulariser"] < 0.4 * history[0]["regulariser"]
    with torch.no_grad():
        salient = model(images)[1].numpy()  # the salient projector's output, eval mode
    y = is_target.numpy()
    norms = np.linalg.norm(salient[te], axis=1)
    assert np.median(norms[~y[te]]) < 0.8 * np.median(norms[y[te]])
    probe = LogisticRegression(max_iter=2000).fit(salient[tr], y[tr])
    assert probe.score(salient[te], y[te]) > 0.65
