"""Tests of mvcnet.harness and mvcnet.config: test-time alignment (online / authors), session
selections (syntax, data-card defaults) and the authors' batch size per protocol (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from medcl.mvcnet.config import MVCNetConfig
from medcl.mvcnet.harness import Pooled, card_sessions, parse_sessions, preprocess


def _pooled(n: int = 16, c: int = 3, t: int = 80, seed: int = 0) -> Pooled:
    """One subject, two classes interleaved (0 1 1 0 ...), channel offsets and mixing."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(c, c)) + 2.0 * np.eye(c)
    X = mixing @ rng.normal(size=(n, c, t)) + rng.normal(scale=3.0, size=(n, c, 1))
    y = np.array([0, 1, 1, 0] * (n // 4))
    return Pooled(X=X.astype(np.float64), y=y, subjects=np.array(["1"] * n),
                  sessions=np.array(["0"] * n), ch_names=[f"E{i}" for i in range(c)],
                  sfreq=100.0, classes=["a", "b"], notes=[])


def _authors_ea(X: np.ndarray) -> np.ndarray:
    """The authors' EA (utils/alg_utils.py), written from its description."""
    from scipy.linalg import fractional_matrix_power

    R = np.mean([np.cov(x) for x in X], axis=0)
    W = np.real(fractional_matrix_power(R, -0.5))
    return np.stack([W @ x for x in X])


def _authors_online(X: np.ndarray) -> np.ndarray:
    """The authors' incremental EA (EA_online), trial by trial in the order given."""
    from scipy.linalg import fractional_matrix_power

    R, out = np.zeros((X.shape[1],) * 2), []
    for k, x in enumerate(X):
        R = (R * k + np.cov(x)) / (k + 1)
        out.append(np.real(fractional_matrix_power(R, -0.5)) @ x)
    return np.stack(out)


def test_test_alignment_online_and_authors() -> None:
    data = _pooled()
    train, test = np.arange(8), np.arange(8, 16)
    Xte = data.X[test]
    y_te = data.y[test]

    _, online = preprocess(MVCNetConfig(protocol="co"), data, train, test)
    np.testing.assert_allclose(online, _authors_online(Xte), rtol=1e-4, atol=1e-5)

    # authors (CO): EA of the whole test set, then incremental EA in class-sorted order; rows
    # come back in the test's own order
    _, authors = preprocess(MVCNetConfig(protocol="co", test_alignment="authors"), data, train,
                            test)
    order = np.argsort(y_te, kind="stable")
    expected = np.empty_like(Xte)
    expected[order] = _authors_online(_authors_ea(Xte)[order])
    np.testing.assert_allclose(authors, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(authors, online, atol=1e-2)
    # recording order would give another result: the class sort matters
    assert not np.allclose(authors, _authors_online(_authors_ea(Xte)), atol=1e-3)

    # CV: the fold's (recording) order; LOSO: the authors align online only
    _, cv = preprocess(MVCNetConfig(protocol="cv", test_alignment="authors"), data, train, test)
    np.testing.assert_allclose(cv, _authors_online(_authors_ea(Xte)), rtol=1e-4, atol=1e-5)
    _, loso = preprocess(MVCNetConfig(protocol="loso", test_alignment="authors"), data, train,
                         test)
    np.testing.assert_allclose(loso, online, rtol=1e-6)

    # training trials: the authors' EA with the centred covariance
    Xtr, _ = preprocess(MVCNetConfig(), data, train, test)
    np.testing.assert_allclose(Xtr, _authors_ea(data.X[train]), rtol=1e-4, atol=1e-5)


def test_config_batch_size_trans_hidden_and_test_alignment() -> None:
    assert MVCNetConfig(protocol="co").batch_size == 64  # MVCNet_CO.py
    assert MVCNetConfig(protocol="cv").batch_size == 32  # MVCNet_CV.py
    assert MVCNetConfig(protocol="loso").batch_size == 64  # MVCNet_LOSO.py
    assert MVCNetConfig(protocol="cv", batch_size=16).batch_size == 16
    cfg = MVCNetConfig()
    assert cfg.trans_hidden is None and cfg.test_alignment == "online"
    with pytest.raises(ValueError, match="test_alignment"):
        MVCNetConfig(test_alignment="offline")
    with pytest.raises(ValueError, match="trans_hidden"):
        MVCNetConfig(trans_hidden=0)


def test_parse_sessions() -> None:
    from medcl.io import ConfigError

    assert parse_sessions(None) is None and parse_sessions("ALL") is None
    assert parse_sessions("0train") == [("0train", None)]
    assert parse_sessions("0:100, 1B") == [("0", 100), ("1B", None)]
    for bad in ("0:0", ":5", "0train,", "a b", "0:x"):
        with pytest.raises(ConfigError, match="--sessions"):
            parse_sessions(bad)


MOABB_CARDS = ("bnci2014_001", "bnci2014_002", "bnci2014_004", "bnci2015_001", "zhou2016",
               "physionetmi")


@pytest.mark.parametrize("card", MOABB_CARDS)
def test_moabb_cards_name_the_authors_sessions(card: str) -> None:
    from medcl.io.cards import get_card

    moabb_id = get_card(card).access["moabb_id"]
    for protocol in ("co", "cv", "loso"):
        text, origin = card_sessions(moabb_id, protocol)
        parse_sessions(text)  # well formed
        assert card in origin
    expected = {"bnci2014_001": "0train", "bnci2014_002": "0:100", "bnci2014_004": "0train:120",
                "bnci2015_001": "0A", "zhou2016": "0", "physionetmi": "all"}[card]
    assert card_sessions(moabb_id, "co")[0] == expected
    assert card_sessions("FakeDataset", "co") == ("all", "default: no data card for "
                                                  "FakeDataset, so all sessions")


def _fake_card(folder, sessions: dict) -> None:
    """A data card for MOABB's FakeDataset (offline) in ``folder``."""
    from medcl.io.cards import get_card

    card = yaml.safe_load(get_card("bnci2014_001").path.read_text())
    card.update(id="fakedataset", access={"method": "moabb", "moabb_id": "FakeDataset"})
    card["protocol"]["sessions"] = sessions
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fakedataset.yaml").write_text(yaml.safe_dump(card))


def test_sessions_default_from_the_card_and_all_pools(tmp_path, medcl_cli, monkeypatch) -> None:
    """``--moabb`` without ``--sessions``: the card's selection for the protocol (here session
    1, its first 20 trials), printed and recorded; ``--sessions all`` pools both sessions."""
    monkeypatch.setenv("MNE_DATASETS_FAKEDATASET_PATH", str(tmp_path / "mne"))
    _fake_card(tmp_path / "cards", {"co": "1:20", "cv": "0"})
    monkeypatch.setenv("MEDCL_CARDS_DIR", str(tmp_path / "cards"))
    tiny = ["--epochs", "1", "--seeds", "1", "--models", "csp_lda"]
    run = tmp_path / "run"
    code, _, err = medcl_cli(["mvcnet", "train", "--moabb", "FakeDataset", "--subjects", "1",
                              "--out", run, *tiny])
    assert code == 0, err
    assert "sessions used: 1 (selection '1:20', default: data card fakedataset" in err
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["sessions_used"] == ["1"] and config["n_trials"] == 20
    assert config["session_selection"]["sessions"] == "1:20"
    assert config["config"]["batch_size"] == 64 and config["config"]["test_alignment"] == "online"
    report = (run / "report.md").read_text()
    assert "Sessions used: 1 (selection '1:20'" in report
    assert "Test-time alignment: **online" in report
    assert "Test-time alignment: online" in (run / "results.md").read_text()

    pooled = tmp_path / "pooled"
    code, _, err = medcl_cli(["mvcnet", "train", "--moabb", "FakeDataset", "--subjects", "1",
                              "--sessions", "all", "--protocol", "cv",
                              "--test-alignment", "authors", "--out", pooled, *tiny])
    assert code == 0, err
    config = yaml.safe_load((pooled / "config.yaml").read_text())
    assert config["sessions_used"] == ["0", "1"] and config["n_trials"] == 120
    assert config["config"]["batch_size"] == 32  # the authors' CV batch
    assert "Test-time alignment: authors" in (pooled / "results.md").read_text()
    assert set(__import__("pandas").read_csv(pooled / "results.csv").test_alignment) == {
        "authors"}

    code, _, err = medcl_cli(["mvcnet", "train", "--moabb", "FakeDataset", "--subjects", "1",
                              "--sessions", "1:0", "--out", tmp_path / "bad", *tiny])
    assert code == 2 and "--sessions" in err and not (tmp_path / "bad").exists()
    code, _, err = medcl_cli(["mvcnet", "train", "--moabb", "FakeDataset", "--subjects", "1",
                              "--test-alignment", "offline", "--out", tmp_path / "bad", *tiny])
    assert code == 2 and "--test-alignment" in err and not (tmp_path / "bad").exists()
