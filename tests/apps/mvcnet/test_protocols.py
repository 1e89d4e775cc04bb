"""Tests of mvcnet.protocols: CO, CV, LOSO and T->E splits and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from medcl.mvcnet.protocols import (
    PROTOCOLS,
    Split,
    co_split,
    cv_splits,
    loso_splits,
    make_splits,
    t2e_split,
)


def test_co_first_80_percent_of_each_class_by_hand() -> None:
    # class 0 at 0,2,4,6,8 (5 trials -> 4 train); class 1 at 1,3,5,7,9,10,11,12,13,14 (10 -> 8)
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1])
    split = co_split(y)
    np.testing.assert_array_equal(split.train, [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12])
    np.testing.assert_array_equal(split.test, [8, 13, 14])


def test_co_counts_and_float_rounding() -> None:
    # 15 per class: 0.8 * 15 = 12.000000000000002 in floating point -> 12, not 13
    y = np.repeat([0, 1], 15)
    split = co_split(y)
    assert np.sum(y[split.train] == 0) == 12 and np.sum(y[split.train] == 1) == 12
    # BNCI2014001 CO: 72 trials per class -> ceil(57.6) = 58 train per class
    y = np.tile([0, 1], 72)
    split = co_split(y)
    assert split.train.size == 116 and split.test.size == 28
    # the test part is the chronologically last trials of each class
    for c in (0, 1):
        assert split.train[y[split.train] == c].max() < split.test[y[split.test] == c].min()
    # a class with 2 trials keeps one for testing
    split = co_split(np.array([0, 1, 0, 1]))
    np.testing.assert_array_equal(split.test, [2, 3])


def test_cv_folds_cover_every_index_once_in_order() -> None:
    splits = cv_splits(23, k=5)
    assert [s.name for s in splits] == [f"fold {i}/5" for i in range(1, 6)]
    tests = np.concatenate([s.test for s in splits])
    np.testing.assert_array_equal(tests, np.arange(23))  # no shuffle: contiguous blocks in order
    np.testing.assert_array_equal(splits[0].test, np.arange(5))
    for s in splits:
        np.testing.assert_array_equal(np.sort(np.concatenate([s.train, s.test])), np.arange(23))
        assert np.intersect1d(s.train, s.test).size == 0


def test_loso() -> None:
    subjects = np.array([1, 1, 2, 2, 2, 3])
    splits = loso_splits(subjects)
    assert [s.name for s in splits] == ["test subject 1", "test subject 2", "test subject 3"]
    np.testing.assert_array_equal(splits[1].test, [2, 3, 4])
    np.testing.assert_array_equal(splits[1].train, [0, 1, 5])


@pytest.mark.parametrize(
    ("names", "train", "test"),
    [
        (("0train", "1test"), None, None),
        (("0train", "1test"), "T", "E"),
        (("0train", "1test"), "0train", "1test"),
        (("T", "E"), None, None),
        (("T", "E"), "0train", "1test"),
    ],
)
def test_t2e_session_names(names: tuple[str, str], train: str | None, test: str | None) -> None:
    sessions = np.array([names[1], names[0], names[0], names[1], names[0]])
    split = t2e_split(sessions, train=train, test=test)
    assert split.name == "T->E"
    np.testing.assert_array_equal(split.train, [1, 2, 4])
    np.testing.assert_array_equal(split.test, [0, 3])


def test_t2e_moabb_multisession_and_explicit() -> None:
    sessions = np.array(["0train", "1train", "2train", "3test", "4test"])
    split = t2e_split(sessions)
    np.testing.assert_array_equal(split.train, [0, 1, 2])
    np.testing.assert_array_equal(split.test, [3, 4])
    split = t2e_split(np.array(["a", "b", "c"]), train="b", test="a")
    np.testing.assert_array_equal(split.train, [1])
    np.testing.assert_array_equal(split.test, [0])
    with pytest.raises(ValueError, match="cannot tell"):
        t2e_split(np.array(["a", "b", "c"]))
    with pytest.raises(ValueError, match="not found"):
        t2e_split(np.array(["a", "b"]), train="x", test="a")


def test_make_splits_global_indices() -> None:
    y = np.tile([0, 1], 10)
    subjects = np.repeat([7, 9], 10)
    sessions = np.tile(np.repeat(["0train", "1test"], 5), 2)

    co = make_splits("co", y=y, subjects=subjects)
    assert [s.name for s in co] == ["subject 7", "subject 9"]
    assert set(co[1].train) | set(co[1].test) == set(range(10, 20))

    cv = make_splits("cv", y=y, subjects=subjects)
    assert len(cv) == 10 and cv[5].name == "subject 9 fold 1/5"
    np.testing.assert_array_equal(cv[5].test, [10, 11])

    loso = make_splits("loso", y=y, subjects=subjects)
    np.testing.assert_array_equal(loso[0].test, np.arange(10))

    t2e = make_splits("t2e", y=y, subjects=subjects, sessions=sessions)
    assert [s.name for s in t2e] == ["T->E subject 7", "T->E subject 9"]
    np.testing.assert_array_equal(t2e[1].train, np.arange(10, 15))
    np.testing.assert_array_equal(t2e[1].test, np.arange(15, 20))
    assert all(isinstance(s, Split) for s in co + cv + loso + t2e)
    assert PROTOCOLS == ("co", "cv", "loso", "t2e")


def test_make_splits_errors() -> None:
    y = np.tile([0, 1], 5)
    with pytest.raises(ValueError, match="unknown protocol 'kfold'.*'co', 'cv', 'loso', 't2e'"):
        make_splits("kfold", y=y)
    with pytest.raises(ValueError, match="'loso' needs at least 2 subjects"):
        make_splits("loso", y=y, subjects=np.ones(10, dtype=int))
    with pytest.raises(ValueError, match="'loso' needs `subjects`"):
        make_splits("loso", y=y)
    with pytest.raises(ValueError, match="subject 0: protocol 't2e' needs two sessions"):
        make_splits("t2e", y=y, sessions=np.array(["T"] * 10))
    with pytest.raises(ValueError, match="'t2e' needs `sessions`"):
        make_splits("t2e", y=y)
    with pytest.raises(ValueError, match="'co', subject 0: 2 trial.*fewer than the 3 classes"):
        make_splits("co", y=np.array([0, 1, 2, 0, 1]), subjects=np.array([0, 0, 1, 1, 1]))
    with pytest.raises(ValueError, match="'co', subject 0: class 2 has 1 trial"):
        make_splits("co", y=np.array([0, 1, 0, 1, 2]))
    with pytest.raises(ValueError, match="'cv', subject 0: 3 trial.*5 folds"):
        make_splits("cv", y=np.array([0, 1, 0]))
    # class-sorted trials: fold 1 of 2 tests only class 0, which its training part lacks
    with pytest.raises(ValueError, match="the test part has class.*training part lacks"):
        make_splits("cv", y=np.repeat([0, 1], 5), k=2)
    with pytest.raises(ValueError, match="one entry per trial"):
        make_splits("co", y=y, subjects=np.zeros(3))


def test_protocol_names_have_one_home() -> None:
    """protocols, harness and CLI read the names and titles that config defines."""
    from medcl.mvcnet import config, harness, protocols
    from medcl.mvcnet.config import MVCNetConfig

    assert protocols.PROTOCOLS is config.PROTOCOLS
    assert harness.PROTOCOL_TITLES is config.PROTOCOL_TITLES
    assert tuple(config.PROTOCOL_TITLES) == config.PROTOCOLS
    with pytest.raises(ValueError, match="protocol must be one of"):
        MVCNetConfig(protocol="kfold")
