"""MVCNet's objective against a hand assembly of the core losses, and the harness helpers."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.losses import NTXentLoss
from medcl.mvcnet.harness import pool, subject_session, summarise
from medcl.mvcnet.train import MVCNetObjective


def test_objective_is_ce_plus_weighted_contrasts():
    g = torch.Generator().manual_seed(0)
    b, views, feat, k = 5, 3, 6, 2
    n = b * (1 + views)
    out = {"logits": torch.randn(n, k, generator=g), "cnn": torch.randn(n, feat, generator=g),
           "proj": torch.randn(n, feat, generator=g)}
    y = torch.randint(0, k, (n,), generator=g)
    got = MVCNetObjective(0.2, 0.1, 0.3)(out, y, views)
    ce = sum(F.cross_entropy(out["logits"][i * b:(i + 1) * b], y[i * b:(i + 1) * b])
             for i in range(1 + views))
    nt = NTXentLoss(0.2)

    def rep(i):  # issue 11: the branches stacked along the batch axis, as the authors
        return torch.cat([out["cnn"][i * b:(i + 1) * b], out["proj"][i * b:(i + 1) * b]])

    cvc = sum(nt(rep(0), rep(i)) for i in range(1, 1 + views)) / views
    cmc = nt(out["cnn"], out["proj"])
    assert got["ce"].item() == pytest.approx(ce.item(), rel=1e-6)
    assert got["cvc"].item() == pytest.approx(cvc.item(), rel=1e-6)
    assert got["loss"].item() == pytest.approx((ce + 0.1 * cvc + 0.3 * cmc).item(), rel=1e-6)


def test_subject_session_from_file_names():
    assert subject_session(Path("A01T.gdf")) == ("A01", "T")
    assert subject_session(Path("data/A09E.gdf")) == ("A09", "E")
    assert subject_session(Path("B0103T.gdf")) == ("B01", "03T")
    assert subject_session(Path("sub-02.edf")) == ("sub-02", "0")


def _trials(subject, ch=("C3", "C4"), sfreq=250.0, n=4):
    from medcl.io.eeg import EEGTrials

    return EEGTrials(data=np.zeros((n, len(ch), 10), np.float32), labels=np.arange(n) % 2,
                     classes=["left", "right"], ch_names=list(ch), sfreq=sfreq,
                     onsets=np.arange(n, dtype=float), subject=subject, session="0",
                     source=f"{subject}.edf", notes=[])


def test_pool_stacks_and_rejects_mismatches():
    from medcl.io import InputFileError

    p = pool([_trials("s1"), _trials("s2")])
    assert p.X.shape == (8, 2, 10) and list(p.subjects[:5]) == ["s1"] * 4 + ["s2"]
    with pytest.raises(InputFileError, match="s2.edf.*channels") as info:
        pool([_trials("s1"), _trials("s2", ch=("C3", "Cz"))])
    # names what differs and the option that brings the files together
    assert "lacks C4; has extra Cz" in str(info.value) and "--channels C3" in str(info.value)
    with pytest.raises(InputFileError, match="another order.*--channels C3,C4"):
        pool([_trials("s1"), _trials("s2", ch=("C4", "C3"))])
    with pytest.raises(InputFileError, match="sampling rate"):
        pool([_trials("s1"), _trials("s3", sfreq=512.0)])


def test_summarise_means_over_splits_then_seeds():
    table = pd.DataFrame({"model": ["m"] * 4, "seed": [1, 1, 2, 2],
                          "split": ["a", "b", "a", "b"], "accuracy": [0.5, 0.7, 0.8, 1.0]})
    row = summarise(table).iloc[0]
    assert row["mean"] == pytest.approx(75.0) and row["seeds"] == 2
    assert row["std"] == pytest.approx(np.std([60.0, 90.0], ddof=1), abs=0.01)


@pytest.mark.slow
def test_short_training_on_simulated_data_beats_chance_on_held_out_trials():
    """One simulated subject, CO split (first 80% of each class in time to train): MVCNet trained
    briefly at a CPU size decodes the held-out 20% well above chance (0.5)."""
    from medcl.io.eeg import trials_from_raw
    from medcl.mvcnet.config import MVCNetConfig
    from medcl.mvcnet.harness import pool, preprocess, run_protocol
    from medcl.mvcnet.simulate import simulate_raw

    raw = simulate_raw(2, n_trials_per_class=40, snr=1.5, seed=0)
    trials = trials_from_raw(raw, "left=769,right=770", tmin=0.0, tmax=4.0, resample=125.0,
                             source="simulated", subject="2", session="0")
    data = pool([trials])
    cfg = MVCNetConfig(epochs=10, seeds=[2], trans_hidden=16, batch_size=16, n_filters=32)
    table, _ = run_protocol(cfg, data, ["mvcnet"])
    acc = table.set_index("model").accuracy
    assert int(table.n_test.iloc[0]) == 16  # 8 of each class's 40 trials
    assert acc["mvcnet (cnn)"] >= 0.75, acc.to_dict()
    # test trials are aligned online: a trial's alignment uses only it and those before it
    Xtr, Xte = preprocess(cfg, data, np.arange(64), np.arange(64, 80))
    _, Xte_first = preprocess(cfg, data, np.arange(64), np.arange(64, 70))
    np.testing.assert_allclose(Xte[:6], Xte_first, rtol=1e-5, atol=1e-6)


def test_multiview_step_stacks_the_views_and_shares_linear_ones():
    """One stacked batch (raw + views, labels of a reflected view swapped); the channel maps
    change nothing but the work."""
    from medcl.mvcnet.model import MVCNet
    from medcl.mvcnet.train import multiview_step
    from medcl.mvcnet.views import ViewPipeline

    torch.manual_seed(0)
    net = MVCNet(3, 250, 2, pool=25, trans_hidden=8, n_filters=4).eval()
    objective = MVCNetObjective()
    x, y = torch.randn(6, 3, 250), torch.tensor([0, 1] * 3)
    seen = []
    net.register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    losses = []
    for maps in (None, "maps"):
        views = ViewPipeline(["flip", "noise", "reflect"], ["C3", "Cz", "C4"], 250.0,
                             ["left", "right"], seed=0)
        got = multiview_step(net, views, objective, x, y,
                             channel_maps=views.channel_maps(3) if maps else None)
        losses.append(got)
    assert seen == [(24, 3, 250)] * 2
    for key in ("loss", "ce", "cvc", "cmc"):
        assert losses[0][key].item() == pytest.approx(losses[1][key].item(), rel=1e-5)


def test_labels_files_match_recordings_by_stem():
    from medcl.io import ConfigError
    from medcl.mvcnet.harness import match_labels

    files = [Path("d/A01T.gdf"), Path("d/A01E.gdf")]
    assert match_labels(files, [Path("l/A01E.mat")]) == [None, Path("l/A01E.mat")]
    assert match_labels(files, [Path("A01E.mat"), Path("A01T.mat")]) == [Path("A01T.mat"),
                                                                        Path("A01E.mat")]
    assert match_labels(files, [Path("x.mat"), Path("y.mat")]) == [Path("x.mat"), Path("y.mat")]
    assert match_labels(files, None) == [None, None]
    with pytest.raises(ConfigError, match="x.mat match no recording"):
        match_labels(files, [Path("x.mat")])


def test_data_and_moabb_together_is_an_error(tmp_path):
    from medcl.io import ConfigError
    from medcl.mvcnet.config import MVCNetConfig
    from medcl.mvcnet.harness import load_data

    with pytest.raises(ConfigError, match="--moabb"):
        load_data(MVCNetConfig(), files=[tmp_path / "a.edf"], moabb="FakeDataset")


def test_model_size_is_checked_before_training():
    from medcl.io import ConfigError
    from medcl.mvcnet.config import MVCNetConfig
    from medcl.mvcnet.train import check_model_size

    check_model_size(MVCNetConfig(), 22, 1000, 250.0)  # the paper's size: 45 M
    check_model_size(MVCNetConfig(pool=125, trans_hidden=None), 22, 1000)  # 4 x 512 = 2048
    with pytest.raises(ConfigError, match="1126 M weights.*--trans-hidden.*--resample"):
        check_model_size(MVCNetConfig(trans_hidden=2048), 22, 25000, 250.0)  # --tmax 100
    with pytest.raises(ConfigError, match="x 51200\\)"):  # 4 x 64 x 200 features
        check_model_size(MVCNetConfig(), 22, 25000, 250.0)


def test_train_run_names_the_files_when_trials_are_too_few(tmp_path):
    from medcl.io import InputFileError
    from medcl.mvcnet.config import MVCNetConfig
    from medcl.mvcnet.harness import train_run

    data = pool([_trials("s1", n=3)])  # one trial of the second class
    with pytest.raises(InputFileError, match="^a.edf, b.edf: too few labelled trials"):
        train_run(MVCNetConfig(), data, ["csp_lda"], tmp_path / "run",
                  sources={"data": ["a.edf", "b.edf"]})
    assert not (tmp_path / "run").exists()
