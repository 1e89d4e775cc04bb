"""``medcl mvcnet`` end to end on recordings written here, and bad inputs: exit 2, a message
naming the file, nothing half-written."""

import itertools
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

TINY = ["--epochs", "2", "--seeds", "1", "--trans-hidden", "16", "--batch-size", "16",
        "--resample", "125"]



@pytest.fixture(scope="module")
def trained(recordings, tmp_path_factory):
    """A tiny run on the two simulated EDF recordings (module scope: trained once)."""
    from medcl.cli import main

    run_dir = tmp_path_factory.mktemp("runs") / "run"
    args = ["mvcnet", "train", "--out", run_dir, "--models", "mvcnet,csp_lda", *TINY]
    for path in recordings:
        args += ["--data", path]
    old = sys.argv
    sys.argv = ["medcl", *map(str, args)]
    try:
        main()
    except SystemExit as stop:
        assert not stop.code
    finally:
        sys.argv = old
    return run_dir


def test_train_then_predict(recordings, trained, tmp_path, medcl_cli):
    run_dir = trained
    for name in ("config.yaml", "splits.csv", "model.pt", "report.md", "results.csv",
                 "results.md", "final/metrics.csv", "confusion.png", "learning_curves.png"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "metrics.csv").exists()  # metrics.csv: per-epoch training logs only
    results = pd.read_csv(run_dir / "results.csv")
    assert set(results.model) == {"mvcnet (cnn)", "mvcnet (fused)", "csp_lda"}
    assert "CO (within subject" in (run_dir / "report.md").read_text()
    assert re.search(r"^\| mvcnet \(cnn\) +\|", (run_dir / "results.md").read_text(), re.M)
    # splits.csv is the per-split/seed table; the final model's per-epoch log is in final/
    splits = pd.read_csv(run_dir / "splits.csv")
    assert {"protocol", "split", "model", "seed", "accuracy"} <= set(splits.columns)
    assert len(splits) == 2 * 3  # two subjects (CO splits) x three scored models
    assert "epoch" in pd.read_csv(run_dir / "final" / "metrics.csv").columns
    report = (run_dir / "report.md").read_text()
    assert "final/metrics.csv" in report and "`splits.csv`" in report
    assert "`metrics.csv`" not in report

    pred = tmp_path / "predictions.csv"
    code, out, err = medcl_cli(["mvcnet", "predict", "--model", run_dir, "--data", recordings[0],
                          "--out", pred])
    assert code == 0, err
    table = pd.read_csv(pred)
    assert len(table) == 20 and set(table.predicted) <= {"left", "right"}
    assert {"onset_s", "p_left", "p_right", "true"} <= set(table.columns)
    assert ((table.p_left + table.p_right - 1).abs() < 1e-5).all()
    # what reading changed is said on stderr, one line each
    assert "resampled from 250 Hz to 125 Hz" in err
    assert all(line.startswith(str(recordings[0])) for line in err.strip().splitlines())


def test_predict_decodes_cues_of_unknown_class(recordings, trained, tmp_path, medcl_cli):
    """A BCI IV 2a evaluation session without its labels file: every cue is 783."""
    import mne

    raw = mne.io.read_raw_edf(recordings[0], preload=True, verbose="error")
    notes = raw.annotations
    raw.set_annotations(mne.Annotations(notes.onset, notes.duration,
                                        ["783" if d in ("769", "770") else d
                                         for d in notes.description]))
    unlabelled = tmp_path / "A01E_raw.fif"
    raw.save(unlabelled, verbose="error")
    pred = tmp_path / "p.csv"
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", trained, "--data", unlabelled,
                              "--out", pred])
    assert code == 0, err
    table = pd.read_csv(pred)
    assert len(table) == 20 and "true" not in table.columns


def test_predict_checks_infer_and_event_classes(recordings, trained, tmp_path, medcl_cli):
    pred = tmp_path / "p.csv"
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", trained, "--data", recordings[0],
                              "--out", pred, "--infer", "foo"])
    assert code == 2 and "--infer" in err and "Traceback" not in err
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", trained, "--data", recordings[0],
                              "--out", pred, "--events", "up=769,down=770"])
    assert code == 2 and "left" in err and "up" in err
    assert not pred.exists()
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", trained, "--data", recordings[0],
                              "--out", pred, "--events", "right=770,left=769,unknown=783",
                              "--infer", "fused"])
    assert code == 0, err


def test_run_from_before_the_fused_head_predicts_cnn_and_refuses_fused(
        recordings, trained, tmp_path, medcl_cli):
    import shutil

    import torch

    old = tmp_path / "old_run"
    shutil.copytree(trained, old)
    state = torch.load(old / "model.pt", weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.startswith("fused_classifier.")},
               old / "model.pt")
    pred = tmp_path / "p.csv"
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", old, "--data", recordings[0],
                              "--out", pred, "--infer", "cnn"])
    assert code == 0, err
    pred.unlink()
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", old, "--data", recordings[0],
                              "--out", pred, "--infer", "fused"])
    assert code == 2 and "fused head" in err and "Traceback" not in err
    assert not pred.exists()


def test_precision_bf16_mixed_trains_on_the_cpu_and_bad_values_are_refused(
        recordings, tmp_path, medcl_cli):
    import yaml

    run_dir = tmp_path / "run"
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--out", run_dir,
                              "--models", "mvcnet", "--precision", "bf16-mixed", *TINY])
    assert code == 0, err
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["config"]["precision"] == \
        "bf16-mixed"
    assert "precision bf16-mixed" in (run_dir / "report.md").read_text()
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--out",
                              tmp_path / "other", "--precision", "16-mixed", *TINY])
    assert code == 2 and "precision" in err and not (tmp_path / "other").exists()


def test_ems_trains_and_predicts_standardised(recordings, tmp_path, medcl_cli, monkeypatch):
    import medcl.mvcnet.preprocess as preprocess

    calls = []
    ems = preprocess.exponential_moving_standardize
    monkeypatch.setattr(preprocess, "exponential_moving_standardize",
                        lambda X, *a, **k: calls.append(len(X)) or ems(X, *a, **k))
    run_dir = tmp_path / "run"
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--out", run_dir,
                              "--ems", "--models", "mvcnet", *TINY])
    assert code == 0, err
    assert "standardisation" in (run_dir / "report.md").read_text()
    calls.clear()
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", run_dir, "--data", recordings[0],
                              "--out", tmp_path / "p.csv"])
    assert code == 0, err
    assert calls == [20]  # predict standardises the trials as training did


def test_channels_option_selects_channels(recordings, tmp_path, medcl_cli):
    run_dir = tmp_path / "run"
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--out", run_dir,
                              "--channels", "C3,Cz,C4", "--models", "csp_lda", *TINY])
    assert code == 0, err
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["ch_names"] == ["C3", "Cz", "C4"]
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--out", run_dir,
                              "--channels", "C3,Oz", *TINY])
    assert code == 2 and "Oz" in err


def test_fewer_trials_than_classes_is_a_clear_error(tmp_path, medcl_cli):
    from medcl.mvcnet.simulate import simulate_raw

    path = tmp_path / "one_each_raw.fif"
    simulate_raw(1, n_trials_per_class=1, seed=0).save(path, verbose="error")
    out = tmp_path / "run"
    code, _, err = medcl_cli(["mvcnet", "train", "--data", path, "--out", out, *TINY])
    assert code == 2 and str(path) in err and "too few labelled trials" in err
    assert "Traceback" not in err and not out.exists()


def test_projector_too_large_is_refused_up_front(recordings, tmp_path, medcl_cli):
    out = tmp_path / "run"
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--out", out,
                              "--epochs", "1", "--seeds", "1", "--resample", "125",
                              "--trans-hidden", "20000"])  # 22 x 500 x 20000 = 220 M
    assert code == 2 and "220 M weights" in err and "--trans-hidden" in err
    assert not out.exists()


def test_data_with_moabb_is_an_error(recordings, tmp_path, medcl_cli):
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--moabb",
                              "FakeDataset", "--out", tmp_path / "run", *TINY])
    assert code == 2 and "--moabb" in err and "--data" in err


def test_moabb_fake_dataset_end_to_end(tmp_path, medcl_cli, monkeypatch):
    monkeypatch.setenv("MNE_DATASETS_FAKEDATASET_PATH", str(tmp_path / "mne"))
    run_dir = tmp_path / "run"
    code, _, err = medcl_cli(["mvcnet", "train", "--moabb", "FakeDataset", "--subjects", "1",
                              "--protocol", "t2e", "--models", "csp_lda", "--out", run_dir,
                              *TINY])
    assert code == 0, err
    assert "T->E" in (run_dir / "results.md").read_text()


def test_moabb_sessions_option(tmp_path, medcl_cli, monkeypatch):
    monkeypatch.setenv("MNE_DATASETS_FAKEDATASET_PATH", str(tmp_path / "mne"))
    run_dir = tmp_path / "run"
    code, _, err = medcl_cli(["mvcnet", "train", "--moabb", "FakeDataset", "--subjects", "1",
                              "--sessions", "1", "--models", "csp_lda", "--out", run_dir, *TINY])
    assert code == 0, err
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["sessions"] == ["1"] and config["sessions_used"] == ["1"]
    assert "sessions 1." in (run_dir / "report.md").read_text()
    code, _, err = medcl_cli(["mvcnet", "train", "--moabb", "FakeDataset", "--subjects", "1",
                              "--sessions", "0train", "--out", tmp_path / "bad", *TINY])
    assert code == 2 and "0train" in err and "0, 1" in err
    assert not (tmp_path / "bad").exists()
    code, _, err = medcl_cli(["mvcnet", "train", "--data", tmp_path / "x.edf", "--sessions", "1",
                              "--out", tmp_path / "bad", *TINY])
    assert code == 2 and "--sessions" in err


def test_simulate_refuses_to_overwrite(tmp_path, medcl_cli):
    args = ["mvcnet", "simulate", "--out", tmp_path, "--subjects", "1", "--trials", "2"]
    assert medcl_cli(args)[0] == 0
    before = (tmp_path / "sub-01.edf").read_bytes()
    code, _, err = medcl_cli([*args, "--seed", "5"])
    assert code == 2 and "sub-01.edf" in err and "empty --out" in err
    assert (tmp_path / "sub-01.edf").read_bytes() == before


def _usage(command: str) -> str:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    block = readme.split("medcl mvcnet simulate  --out", 1)[1].split("```", 1)[0]
    lines = ("medcl mvcnet simulate  --out" + block).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"medcl mvcnet {command}"))
    text = [lines[start]]
    text += [line for line in itertools.takewhile(lambda x: not x.startswith("medcl"),
                                                    lines[start + 1:])]
    return " ".join(text)


@pytest.mark.parametrize("command", ["simulate", "train", "predict", "benchmark"])
def test_readme_usage_matches_help(command, medcl_cli):
    code, help_text, _ = medcl_cli(["mvcnet", command, "--help"])
    assert code == 0
    shown = set(re.findall(r"--[a-z][a-z-]+", _usage(command)))
    offered = set(re.findall(r"--[a-z][a-z-]+", help_text))
    assert shown <= offered, shown - offered
    if command in ("train", "benchmark"):  # same data and training options
        for flag in ("--resample", "--batch-size", "--trans-hidden", "--tmin", "--tmax",
                     "--l-freq", "--labels", "--channels", "--ems"):
            assert flag in offered, flag
    extra = {"simulate": {"--seed"}, "predict": {"--infer"}}.get(command, set())
    assert extra <= shown


def test_bad_inputs(recordings, tmp_path, medcl_cli):
    out = tmp_path / "out"
    code, _, err = medcl_cli(["mvcnet", "train", "--data", tmp_path / "missing.edf", "--out", out,
                        *TINY])
    assert code == 2 and "missing.edf" in err
    odd = tmp_path / "rec.xyz"
    odd.write_text("x")
    code, _, err = medcl_cli(["mvcnet", "train", "--data", odd, "--out", out, *TINY])
    assert code == 2 and "rec.xyz" in err
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--events",
                        "left=1,right=2", "--out", out, *TINY])
    assert code == 2 and recordings[0].name in err
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--protocol", "loso",
                        "--out", out, *TINY])
    assert code != 0 and "loso" in (err + _).lower()
    assert not out.exists()
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--models", "svm",
                        "--out", out])
    assert code == 2 and "--models" in err


def test_predict_bad_inputs(recordings, tmp_path, medcl_cli):
    not_a_run = tmp_path / "nope"
    not_a_run.mkdir()
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", not_a_run, "--data", recordings[0],
                        "--out", tmp_path / "p.csv"])
    assert code == 2 and "config.yaml" in err
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", not_a_run, "--data", recordings[0],
                        "--out", recordings[0]])
    assert code == 2
    assert recordings[0].exists() and recordings[0].stat().st_size > 1000
