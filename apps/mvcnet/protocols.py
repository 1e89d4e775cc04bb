"""Evaluation protocols of motor-imagery decoding: which trials train, which test.

Four scenarios, never to be compared with one another (every results table names its protocol):

``"co"``
    Within subject, chronological ("CO" in MVCNet [Wang2025]_): the first 80 % of each class, in
    recording order, train; the rest test.
``"cv"``
    Within subject, 5-fold cross-validation without shuffling (scikit-learn ``KFold``), as in the
    authors' ``MVCNet_CV.py``.
``"loso"``
    Cross-subject, leave one subject out.
``"t2e"``
    Cross-session: train on the first session, test on the second (BCI Competition IV 2a
    ``T -> E``, MOABB ``0train -> 1test``).

Indices are positions in the full arrays (``X``, ``y``, ``subjects``, ``sessions``) and, for the
within-subject protocols, trials are taken in array order, which is assumed chronological.

References
----------
.. [Wang2025] Z. Wang, S. Li, X. Chen, D. Wu, "MVCNet: Multi-View Contrastive Network for Motor
   Imagery Classification", Knowledge-Based Systems 328:114205, 2025, arXiv:2502.17482.
.. [Tangermann2012] M. Tangermann et al., "Review of the BCI Competition IV", Frontiers in
   Neuroscience 6:55, 2012.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold

from .config import PROTOCOLS

__all__ = [
    "PROTOCOLS",
    "Split",
    "co_split",
    "cv_splits",
    "loso_splits",
    "make_splits",
    "t2e_split",
]

#: Session names accepted as the training (first) and test (second) session of ``t2e``:
#: BCI Competition IV file suffixes and MOABB session names.
TRAIN_SESSION_NAMES = ("T", "0train", "train", "session_T")
TEST_SESSION_NAMES = ("E", "1test", "test", "session_E")


@dataclass
class Split:
    """One train/test split.

    Attributes
    ----------
    name : str
        Human-readable label, e.g. ``"subject 1"``, ``"fold 3/5"``, ``"test subject 4"``,
        ``"T->E subject 2"``.
    train : np.ndarray of int, shape (n_train,)
        Indices of the training trials (sorted).
    test : np.ndarray of int, shape (n_test,)
        Indices of the test trials (sorted).
    """

    name: str
    train: np.ndarray
    test: np.ndarray


def _idx(values: np.ndarray | Sequence[int]) -> np.ndarray:
    return np.sort(np.asarray(values, dtype=np.intp))


def co_split(y: np.ndarray, train_fraction: float = 0.8) -> Split:
    """Chronological within-subject split (MVCNet's CO scenario [Wang2025]_).

    For every class, its first ``ceil(train_fraction * n_c)`` trials in array (time) order train
    and the remaining ones test. The authors compute the count once as
    ``ceil(0.8 * n_trials / n_classes)`` for all classes, which is the same for balanced data.
    At least one trial per class always goes to the test part.

    Parameters
    ----------
    y : np.ndarray of int, shape (n_trials,)
        Labels of one subject, in recording order.
    train_fraction : float
        Fraction of each class used for training, in ``(0, 1)``.

    Returns
    -------
    Split
        Named ``"co"``; indices are positions in ``y``.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for label in np.unique(y):
        where = np.flatnonzero(y == label)
        if where.size < 2:
            raise ValueError(
                f"protocol 'co': class {label.item()!r} has {where.size} trial(s); each class "
                "needs at least 2 (one to train, one to test)"
            )
        # round() first so that 0.8 * 15 = 12.000000000000002 gives 12, not 13
        n_train = min(math.ceil(round(train_fraction * where.size, 9)), where.size - 1)
        train.append(where[:n_train])
        test.append(where[n_train:])
    return Split("co", _idx(np.concatenate(train)), _idx(np.concatenate(test)))


def cv_splits(n: int, k: int = 5) -> list[Split]:
    """K-fold cross-validation in order, without shuffling (scikit-learn ``KFold``).

    Fold ``i`` tests the ``i``-th contiguous block of trials, as in the MVCNet authors' CV
    script [Wang2025]_; folds are not stratified.

    Parameters
    ----------
    n : int
        Number of trials.
    k : int
        Number of folds (>= 2, <= n).

    Returns
    -------
    list of Split
        Named ``"fold i/k"``; indices in ``range(n)``.
    """
    n, k = int(n), int(k)
    if k < 2:
        raise ValueError(f"protocol 'cv': k must be >= 2, got {k}")
    if n < k:
        raise ValueError(f"protocol 'cv': {n} trial(s) cannot be split into {k} folds")
    folds = KFold(n_splits=k, shuffle=False).split(np.zeros((n, 1)))
    return [
        Split(f"fold {i}/{k}", _idx(train), _idx(test)) for i, (train, test) in enumerate(folds, 1)
    ]


def loso_splits(subjects: np.ndarray) -> list[Split]:
    """Leave-one-subject-out cross-subject splits.

    Parameters
    ----------
    subjects : np.ndarray, shape (n_trials,)
        Subject of each trial.

    Returns
    -------
    list of Split
        One per subject (in sorted order), named ``"test subject s"``.
    """
    subjects = np.asarray(subjects)
    if subjects.ndim != 1:
        raise ValueError(f"subjects must be one-dimensional, got shape {subjects.shape}")
    unique = np.unique(subjects)
    if unique.size < 2:
        raise ValueError(
            f"protocol 'loso' needs at least 2 subjects, got {unique.size} "
            f"({', '.join(map(str, unique.tolist())) or 'none'})"
        )
    return [
        Split(
            f"test subject {s}",
            _idx(np.flatnonzero(subjects != s)),
            _idx(np.flatnonzero(subjects == s)),
        )
        for s in unique
    ]


def _session_group(
    names: list[str], wanted: str | Sequence[str] | None, aliases: tuple[str, ...]
) -> list[str]:
    """The session names of ``names`` that ``wanted`` designates (exact name or alias)."""
    if wanted is None:
        return []
    wanted_list = [wanted] if isinstance(wanted, str) else list(wanted)
    chosen: list[str] = []
    for want in wanted_list:
        if want in names:
            chosen.append(want)
        elif want in aliases:
            chosen.extend(n for n in names if n in aliases)
        else:
            raise ValueError(f"protocol 't2e': session {want!r} not found; sessions are {names}")
    return list(dict.fromkeys(chosen))


def _default_sessions(names: list[str]) -> tuple[list[str], list[str]]:
    """Pick (train, test) session groups when none are named."""
    train = [n for n in names if n in TRAIN_SESSION_NAMES]
    test = [n for n in names if n in TEST_SESSION_NAMES]
    if train and test:
        return train, test
    # MOABB names such as "0train", "1train", "3test": every "*train" vs every "*test"
    train = [n for n in names if n.endswith("train")]
    test = [n for n in names if n.endswith("test")]
    if train and test and len(train) + len(test) == len(names):
        return train, test
    if len(names) == 2:
        return [names[0]], [names[1]]
    raise ValueError(
        f"protocol 't2e': cannot tell the training from the test session among {names}; "
        "pass train= and test= explicitly"
    )


def t2e_split(
    sessions: np.ndarray,
    train: str | Sequence[str] | None = None,
    test: str | Sequence[str] | None = None,
) -> Split:
    """Cross-session split: train on the first session, test on the second.

    Parameters
    ----------
    sessions : np.ndarray, shape (n_trials,)
        Session name of each trial (converted to ``str``).
    train, test : str, sequence of str or None
        Session(s) to train and test on. ``"T"`` and ``"E"`` (BCI Competition IV) and
        ``"0train"`` / ``"1test"`` (MOABB) are interchangeable aliases: ``train="T"`` selects
        a session called ``"0train"`` and vice versa. ``None`` picks them from the names:
        ``T``/``E``-like names first, then MOABB's ``*train`` vs ``*test``, then the two
        sessions in sorted order.

    Returns
    -------
    Split
        Named ``"T->E"``; indices are positions in ``sessions``.
    """
    sessions = np.asarray(sessions).astype(str)
    if sessions.ndim != 1:
        raise ValueError(f"sessions must be one-dimensional, got shape {sessions.shape}")
    names = sorted(np.unique(sessions).tolist())
    if len(names) < 2:
        raise ValueError(
            f"protocol 't2e' needs two sessions (train and test), got {len(names)}: {names}"
        )
    if train is None and test is None:
        train_names, test_names = _default_sessions(names)
    else:
        train_names = _session_group(names, train, TRAIN_SESSION_NAMES)
        test_names = _session_group(names, test, TEST_SESSION_NAMES)
        if not train_names:
            train_names = [n for n in names if n not in test_names][:1]
        if not test_names:
            test_names = [n for n in names if n not in train_names][:1]
    overlap = set(train_names) & set(test_names)
    if overlap or not train_names or not test_names:
        raise ValueError(
            f"protocol 't2e': train sessions {train_names} and test sessions {test_names} must "
            "be non-empty and disjoint"
        )
    return Split(
        "T->E",
        _idx(np.flatnonzero(np.isin(sessions, train_names))),
        _idx(np.flatnonzero(np.isin(sessions, test_names))),
    )


def make_splits(
    protocol: str,
    *,
    y: np.ndarray,
    subjects: np.ndarray | None = None,
    sessions: np.ndarray | None = None,
    k: int = 5,
    train_fraction: float = 0.8,
    t2e_train: str | Sequence[str] | None = None,
    t2e_test: str | Sequence[str] | None = None,
) -> list[Split]:
    """All train/test splits of a protocol over a dataset.

    ``co``, ``cv`` and ``t2e`` run per subject (one split, or ``k`` folds, per subject);
    ``loso`` runs across subjects. Indices are global positions in ``y``.

    Parameters
    ----------
    protocol : {"co", "cv", "loso", "t2e"}
        The scenario, see the module docstring.
    y : np.ndarray of int, shape (n_trials,)
        Labels.
    subjects : np.ndarray, shape (n_trials,), optional
        Subject of each trial; ``None`` means a single subject (not allowed for ``loso``).
    sessions : np.ndarray, shape (n_trials,), optional
        Session of each trial; required for ``t2e``.
    k : int
        Folds of ``cv``.
    train_fraction : float
        Training fraction per class of ``co``.
    t2e_train, t2e_test : str, sequence of str or None
        Sessions of ``t2e``, see :func:`t2e_split`.

    Returns
    -------
    list of Split
        Named ``"subject s"`` (co), ``"subject s fold i/k"`` (cv), ``"test subject s"`` (loso),
        ``"T->E subject s"`` (t2e).

    Raises
    ------
    ValueError
        Unknown protocol, mismatched lengths, or an impossible case (``loso`` with one subject,
        ``t2e`` with one session, fewer trials than classes or folds, a test class absent from
        the training part).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array, got shape {y.shape}")
    n = y.size
    for label, arr in (("subjects", subjects), ("sessions", sessions)):
        if arr is not None and np.asarray(arr).shape != (n,):
            raise ValueError(
                f"{label} must have one entry per trial ({n}), got shape {np.asarray(arr).shape}"
            )
    subj = np.zeros(n, dtype=int) if subjects is None else np.asarray(subjects)
    n_classes = np.unique(y).size

    if protocol == "loso":
        if subjects is None:
            raise ValueError("protocol 'loso' needs `subjects` (the subject of each trial)")
        splits = loso_splits(subj)
    else:
        if protocol == "t2e" and sessions is None:
            raise ValueError("protocol 't2e' needs `sessions` (the session of each trial)")
        splits = []
        for s in np.unique(subj):
            where = np.flatnonzero(subj == s)
            who = f"subject {s}"
            if where.size < n_classes:
                raise ValueError(
                    f"protocol {protocol!r}, {who}: {where.size} trial(s), fewer than the "
                    f"{n_classes} classes"
                )
            try:
                if protocol == "co":
                    local = [co_split(y[where], train_fraction)]
                elif protocol == "cv":
                    local = cv_splits(where.size, k)
                else:
                    local = [t2e_split(np.asarray(sessions)[where], t2e_train, t2e_test)]
            except ValueError as err:
                head, msg = f"protocol {protocol!r}:", str(err)
                if head in msg:  # "protocol 'co': ..." -> "protocol 'co', subject 3: ..."
                    msg = msg.replace(head, f"protocol {protocol!r}, {who}:", 1)
                else:
                    msg = f"{who}: {msg}"
                raise ValueError(msg) from err
            for sp in local:
                if protocol == "co":
                    name = who
                elif protocol == "cv":
                    name = f"{who} {sp.name}"
                else:
                    name = f"{sp.name} {who}"
                splits.append(Split(name, where[sp.train], where[sp.test]))

    for sp in splits:
        missing = np.setdiff1d(np.unique(y[sp.test]), np.unique(y[sp.train]))
        if missing.size:
            raise ValueError(
                f"protocol {protocol!r}, split {sp.name!r}: the test part has class(es) "
                f"{missing.tolist()} that the training part lacks; a classifier cannot learn them"
            )
    return splits
