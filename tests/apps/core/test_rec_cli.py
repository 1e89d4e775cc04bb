"""``medcl core rec train`` and ``evaluate`` end to end on .inter files written here, and bad
input: exit 2, one line naming the problem, nothing written."""

import numpy as np
import pandas as pd
import pytest
import yaml

from medcl.core.rec_data import SynthSpec, read_inter, synth_interactions, write_inter

SMALL = ["--epochs", "2", "--batch-size", "64", "--hidden", "16", "--max-len", "10", "--quiet"]


@pytest.fixture
def inter_file(tmp_path):
    inter, _ = synth_interactions(SynthSpec(n_users=60, n_items=40, n_clusters=4, seed=1))
    users = np.concatenate([inter.users, ["lonely"]])
    items = np.concatenate([inter.items, ["i1"]])
    times = np.concatenate([inter.timestamps, [1e9]])
    path = tmp_path / "log.inter"
    inter.users, inter.items, inter.timestamps = users, items, times
    write_inter(path, inter)
    return path


@pytest.mark.parametrize("method", ["sasrec", "cl4srec", "mclrec"])
def test_train_then_evaluate(tmp_path, core_cli, inter_file, method):
    run = tmp_path / "run"
    code, out, err = core_cli(["rec", "train", "--data", inter_file, "--method", method,
                               "--out", run, *SMALL])
    assert code == 0, err
    assert "1 user(s) with a single interaction were skipped" in err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "test.csv",
                 "items.csv", "loss.png"):
        assert (run / name).exists(), name
    log = pd.read_csv(run / "metrics.csv")
    assert list(log["epoch"]) == [1, 2] and np.isfinite(log["loss"]).all()
    assert ("augmenter_loss" in log) == (method == "mclrec")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["data_record"]["skipped_single_interaction_users"] == 1
    ev = tmp_path / "eval"
    code, out, err = core_cli(["rec", "evaluate", "--model", run, "--data", inter_file,
                               "--out", ev])
    assert code == 0, err
    table = pd.read_csv(ev / "evaluation.csv")
    assert {"HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20"} <= set(table.columns)
    assert table["users"][0] == 60
    ranks = pd.read_csv(ev / "ranks.csv")
    # the evaluation equals the training run's test table (same targets, same weights)
    assert table["HR@10"][0] == pytest.approx(pd.read_csv(run / "test.csv")["HR@10"][0])
    assert len(ranks) == 60 and (ranks["rank"] >= 0).all()


def test_synth_mclrec_learns_and_reports_the_oracle(tmp_path):
    from medcl.core.rec_train import RecConfig, train_run

    cfg = RecConfig(method="mclrec", epochs=3, batch_size=64, hidden=16, inner=32, max_len=10,
                    dropout=0.1, attn_dropout=0.1, synth_users=80, synth_items=40)
    train_run(cfg, tmp_path / "run", progress=False)
    log = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]  # the training loss decreases
    test = pd.read_csv(tmp_path / "run" / "test.csv")
    assert test["model"][1].startswith("oracle")
    assert test["HR@10"][0] > 2 * 10 / 40  # well above a random ranking (0.25)


def test_read_inter_orders_by_timestamp(tmp_path):
    path = tmp_path / "x.inter"
    path.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                    "a\tx\t5\t3\na\ty\t4\t1\na\tz\t1\t2\n")
    inter = read_inter(path)
    from medcl.core.rec_data import to_sequences

    seqs = to_sequences(inter)
    assert [seqs.items[i - 1] for i in seqs.seqs[0]] == ["y", "z", "x"]


@pytest.mark.parametrize("text, words", [
    ("user_id:token\titem_id:token\n1\t2\n", "no 'timestamp:float' field"),
    ("user_id:token\ttimestamp:float\n1\t2\n", "no 'item_id:token' field"),
    ("user_id:token\titem_id:token\ttimestamp:token\n1\t2\t3\n", "should be 'timestamp:float'"),
    ("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tnoon\n", "line 2 has timestamp"),
    ("user_id:token\titem_id:token\ttimestamp:float\n1\t\t3\n", "line 2 has an empty item_id"),
    ("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n", "no user with two"),
])
def test_bad_inter_exits_2(tmp_path, core_cli, text, words):
    path = tmp_path / "bad.inter"
    path.write_text(text)
    run = tmp_path / "run"
    code, out, err = core_cli(["rec", "train", "--data", path, "--out", run, *SMALL])
    assert code == 2
    assert words in err and err.count("\n") == 1
    assert not run.exists()


def test_bad_options_and_model_exit_2(tmp_path, core_cli):
    code, _, err = core_cli(["rec", "train", "--method", "bert4rec", "--out", tmp_path / "r"])
    assert code == 2 and "'bert4rec' is not known" in err
    code, _, err = core_cli(["rec", "evaluate", "--model", tmp_path, "--data", "synth",
                             "--out", tmp_path / "e"])
    assert code == 2 and "config.yaml is missing" in err
