"""Preprocessing of epoched motor-imagery trials: alignment and standardisation.

Every function works on trial arrays ``X: (n_trials, n_chans, n_times)`` (float, µV). Filtering
and resampling happen upstream, on the continuous recording (MNE, or MOABB's paradigm, in
:mod:`medcl.io.eeg`); the functions here are the alignment steps of MVCNet's protocols.

References
----------
.. [He2020] H. He and D. Wu, "Transfer learning for brain-computer interfaces: a Euclidean space
   data alignment approach", IEEE Trans. Biomed. Eng. 67(2):399-410, 2020.
.. [Wang2025] Z. Wang, S. Li, X. Chen, D. Wu, "MVCNet: Multi-View Contrastive Network for Motor
   Imagery Classification", Knowledge-Based Systems 328:114205, 2025, arXiv:2502.17482.
.. [Schirrmeister2017] R. T. Schirrmeister et al., "Deep learning with convolutional neural
   networks for EEG decoding and visualization", Human Brain Mapping 38(11):5391-5420, 2017.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

__all__ = [
    "OnlineEA",
    "euclidean_alignment",
    "exponential_moving_standardize",
    "inv_sqrtm",
    "mean_covariance",
    "trial_covariances",
]

#: Eigenvalues below ``EIG_FLOOR`` times the largest one are raised to that value before the
#: inverse square root (see :func:`inv_sqrtm`).
EIG_FLOOR = 1e-8


# --------------------------------------------------------------------------- helpers


def _as_trials(X: np.ndarray, name: str = "X") -> np.ndarray:
    """``X`` as a float array of shape ``(n_trials, n_chans, n_times)`` (checked, not copied)."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_trials, n_chans, n_times), got shape {X.shape}"
        )
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
        raise ValueError(f"{name} must not be empty, got shape {X.shape}")
    return X


def _out_dtype(X: np.ndarray) -> np.dtype:
    """Floating inputs keep their dtype (float32 stays float32); others become float64."""
    return X.dtype if np.issubdtype(X.dtype, np.floating) else np.dtype(np.float64)


def trial_covariances(X: np.ndarray, *, demean: bool = True) -> np.ndarray:
    """Spatial covariance of each trial.

    Parameters
    ----------
    X : np.ndarray, shape (n_trials, n_chans, n_times)
        Trials.
    demean : bool
        ``True`` (default): ``np.cov(X_i)``, channel means removed and divided by ``T - 1``, as
        the MVCNet authors' ``EA`` and ``EA_online`` (``utils/alg_utils.py``) [Wang2025]_, so
        that every MVCNet protocol (training EA, test-time incremental EA, ``predict``) aligns
        as theirs. ``False``: ``C_i = X_i X_i^T / T``, the uncentred estimate of He & Wu
        [He2020]_ eq. (1) normalised by the number of samples. The two differ by the trial's
        channel means (small after band-pass filtering, not zero on short windows) and by the
        factor ``T / (T - 1)``, which EA's whitening cancels only up to that scale.

    Returns
    -------
    np.ndarray, shape (n_trials, n_chans, n_chans)
        Symmetric positive semi-definite matrices (float64).
    """
    X = _as_trials(X).astype(np.float64, copy=False)
    n_times = X.shape[-1]
    if demean:
        if n_times < 2:
            raise ValueError("demean=True needs at least 2 samples per trial")
        X = X - X.mean(axis=-1, keepdims=True)
        denom = n_times - 1
    else:
        denom = n_times
    covs = np.einsum("nct,ndt->ncd", X, X) / denom
    return 0.5 * (covs + np.swapaxes(covs, 1, 2))


def mean_covariance(X: np.ndarray, *, demean: bool = True) -> np.ndarray:
    """Euclidean (arithmetic) mean of the trial covariances, He & Wu [He2020]_ eq. (1).

    ``R = (1/n) sum_i C_i`` with the trial covariances ``C_i`` of :func:`trial_covariances`
    (centred ``np.cov`` by default, as the MVCNet authors). This is the reference matrix that
    :func:`euclidean_alignment` whitens, and the ``reference`` that warm-starts
    :class:`OnlineEA`.

    Parameters
    ----------
    X : np.ndarray, shape (n_trials, n_chans, n_times)
        Trials.
    demean : bool
        See :func:`trial_covariances`.

    Returns
    -------
    np.ndarray, shape (n_chans, n_chans)
    """
    return trial_covariances(X, demean=demean).mean(axis=0)


def inv_sqrtm(R: np.ndarray, *, shrinkage: float = 0.0, eig_floor: float = EIG_FLOOR) -> np.ndarray:
    """Inverse square root ``R^{-1/2}`` of a symmetric positive semi-definite matrix.

    Computed from the symmetric eigendecomposition ``R = V diag(w) V^T`` (``scipy.linalg.eigh``)
    as ``V diag(w^{-1/2}) V^T``, so the result is exactly symmetric. Two guards keep a singular
    or ill-conditioned ``R`` (rank-deficient data, e.g. after common-average referencing or with
    fewer samples than channels) from blowing up:

    1. optional shrinkage towards a scaled identity,
       ``R <- (1 - shrinkage) R + shrinkage * (tr(R) / C) I``;
    2. eigenvalue flooring: eigenvalues below ``eig_floor * max(w)`` are raised to that value
       (a :class:`RuntimeWarning` says so). This is Tikhonov regularisation restricted to the
       near-null directions; well-conditioned matrices are untouched.

    Parameters
    ----------
    R : np.ndarray, shape (C, C)
        Symmetric positive semi-definite matrix.
    shrinkage : float
        Shrinkage intensity in ``[0, 1]`` (0: none).
    eig_floor : float
        Relative eigenvalue floor (> 0).

    Returns
    -------
    np.ndarray, shape (C, C)
        Symmetric ``R^{-1/2}`` (float64).
    """
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise ValueError(f"R must be a square matrix, got shape {R.shape}")
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must lie in [0, 1], got {shrinkage}")
    if not eig_floor > 0:
        raise ValueError(f"eig_floor must be > 0, got {eig_floor}")
    if not np.all(np.isfinite(R)):
        raise ValueError("R contains NaN or infinite values")
    R = 0.5 * (R + R.T)
    n = R.shape[0]
    if shrinkage > 0:
        R = (1.0 - shrinkage) * R + shrinkage * (np.trace(R) / n) * np.eye(n)
    w, V = linalg.eigh(R)
    top = float(w.max())
    if top <= 0:
        raise ValueError(
            "the reference covariance is zero or negative definite (all-zero trials?); "
            "Euclidean alignment is undefined"
        )
    floor = eig_floor * top
    if w.min() < floor:
        warnings.warn(
            f"the reference covariance is singular or ill-conditioned (smallest/largest "
            f"eigenvalue {w.min() / top:.3g}); eigenvalues are floored at {eig_floor:g} x the "
            "largest. Pass shrinkage > 0 to regularise explicitly.",
            RuntimeWarning,
            stacklevel=3,
        )
        w = np.maximum(w, floor)
    W = (V / np.sqrt(w)) @ V.T
    return 0.5 * (W + W.T)


# --------------------------------------------------------------------------- alignment


def euclidean_alignment(
    X: np.ndarray,
    *,
    demean: bool = True,
    shrinkage: float = 0.0,
    eig_floor: float = EIG_FLOOR,
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean Alignment (EA) of a set of trials, He & Wu [He2020]_ eqs. (1)-(2).

    ``R = (1/n) sum_i C_i`` (eq. 1), then ``X_i <- R^{-1/2} X_i`` (eq. 2), after which the
    mean covariance of the aligned trials is the identity. MVCNet [Wang2025]_ aligns each
    training set this way (per split in CO, per fold in CV, per subject in LOSO). The paper's
    eq. (1) uses ``C_i = X_i X_i^T``; we follow the authors' code, ``C_i = np.cov(X_i)``
    (``demean=True``, the default), where paper and code differ.

    Parameters
    ----------
    X : np.ndarray, shape (n_trials, n_chans, n_times)
        Trials of one domain (subject / session / split).
    demean : bool
        Covariance estimator, see :func:`trial_covariances` (``True``, the default, reproduces
        the authors' ``np.cov``; ``False`` is He & Wu's uncentred estimate).
    shrinkage, eig_floor : float
        Guards against a singular ``R``, see :func:`inv_sqrtm`.

    Returns
    -------
    aligned : np.ndarray, shape (n_trials, n_chans, n_times)
        Aligned trials, same dtype as ``X``.
    W : np.ndarray, shape (n_chans, n_chans)
        The symmetric ``R^{-1/2}`` (float64); apply it to further trials with ``W @ X``.
    """
    X = _as_trials(X)
    W = inv_sqrtm(mean_covariance(X, demean=demean), shrinkage=shrinkage, eig_floor=eig_floor)
    aligned = np.matmul(W, X.astype(np.float64, copy=False))
    return aligned.astype(_out_dtype(X), copy=False), W


class OnlineEA:
    """Incremental Euclidean Alignment of trials that arrive one at a time.

    The online variant of EA [He2020]_ used on MVCNet's test trials [Wang2025]_: the reference
    is the running mean of the covariances of every trial seen so far, **including the trial
    being aligned** (as in the authors' code). Trial ``k`` (1-based) of a stream is therefore
    aligned with ``R_k^{-1/2}``, ``R_k = (w R_0 + sum_{i<=k} C_i) / (w + k)``, and after the
    whole stream ``R_n`` equals the offline reference :func:`mean_covariance` of the stream
    (without warm start): the last trial is aligned exactly as :func:`euclidean_alignment`
    aligns it.

    Parameters
    ----------
    n_chans : int
        Number of channels.
    reference : np.ndarray, shape (n_chans, n_chans), optional
        Warm-start reference ``R_0`` (e.g. ``mean_covariance(X_train)``). It counts as
        ``reference_weight`` trials in the running mean, so its influence fades as test trials
        accumulate. Without it, the first trial is aligned with its own covariance only.
    reference_weight : float
        Number of trials ``w`` the warm-start reference is worth (> 0; ignored without
        ``reference``).
    demean : bool
        Covariance estimator, see :func:`trial_covariances`.
    shrinkage, eig_floor : float
        Guards against a singular reference, see :func:`inv_sqrtm`. Early in a stream without
        warm start (fewer samples than channels) the reference is singular and is floored.

    Attributes
    ----------
    n_seen : int
        Trials added to the running mean (the warm start not counted).
    reference_ : np.ndarray or None
        The current reference ``R_k`` (``None`` before any trial or warm start).
    """

    def __init__(
        self,
        n_chans: int,
        reference: np.ndarray | None = None,
        *,
        reference_weight: float = 1.0,
        demean: bool = True,
        shrinkage: float = 0.0,
        eig_floor: float = EIG_FLOOR,
    ) -> None:
        if int(n_chans) < 1:
            raise ValueError(f"n_chans must be >= 1, got {n_chans}")
        self.n_chans = int(n_chans)
        self.demean = demean
        self.shrinkage = shrinkage
        self.eig_floor = eig_floor
        self.n_seen = 0
        self._sum = np.zeros((self.n_chans, self.n_chans))
        self._weight = 0.0
        if reference is not None:
            ref = np.asarray(reference, dtype=np.float64)
            if ref.shape != (self.n_chans, self.n_chans):
                raise ValueError(
                    f"reference must have shape ({self.n_chans}, {self.n_chans}), got {ref.shape}"
                )
            if not reference_weight > 0:
                raise ValueError(f"reference_weight must be > 0, got {reference_weight}")
            self._sum = float(reference_weight) * 0.5 * (ref + ref.T)
            self._weight = float(reference_weight)

    @property
    def reference_(self) -> np.ndarray | None:
        """The current reference covariance ``R_k`` (``None`` when nothing is known yet)."""
        if self._weight == 0:
            return None
        return self._sum / self._weight

    @property
    def matrix_(self) -> np.ndarray | None:
        """The current alignment matrix ``R_k^{-1/2}`` (``None`` when nothing is known yet)."""
        ref = self.reference_
        if ref is None:
            return None
        return inv_sqrtm(ref, shrinkage=self.shrinkage, eig_floor=self.eig_floor)

    def update(self, X: np.ndarray) -> OnlineEA:
        """Add trials to the running mean without aligning them.

        Parameters
        ----------
        X : np.ndarray, shape (n_chans, n_times) or (n_trials, n_chans, n_times)

        Returns
        -------
        OnlineEA
            ``self``.
        """
        batch = self._check(X)[0]
        covs = trial_covariances(batch, demean=self.demean)
        self._sum = self._sum + covs.sum(axis=0)
        self._weight += covs.shape[0]
        self.n_seen += covs.shape[0]
        return self

    def transform(self, X: np.ndarray, update: bool = True) -> np.ndarray:
        """Align trials in arrival order.

        Parameters
        ----------
        X : np.ndarray, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
            One trial or a batch; a batch is processed trial by trial in order, exactly as if
            the trials had been passed one at a time.
        update : bool
            ``True``: each trial first joins the running mean, then is aligned with the updated
            reference (the trial itself included). ``False``: all trials are aligned with the
            current reference, which is left unchanged (needs a warm start or earlier trials).

        Returns
        -------
        np.ndarray
            Aligned trials, same shape and dtype as ``X``.
        """
        batch, single = self._check(X)
        dtype = _out_dtype(batch)
        data = batch.astype(np.float64, copy=False)
        if not update:
            W = self.matrix_
            if W is None:
                raise ValueError(
                    "OnlineEA.transform(update=False) needs a reference: pass `reference=` or "
                    "call update()/transform() on earlier trials first"
                )
            out = np.matmul(W, data)
        else:
            covs = trial_covariances(data, demean=self.demean)
            out = np.empty_like(data)
            for i in range(data.shape[0]):
                self._sum = self._sum + covs[i]
                self._weight += 1.0
                self.n_seen += 1
                W = inv_sqrtm(
                    self._sum / self._weight, shrinkage=self.shrinkage, eig_floor=self.eig_floor
                )
                out[i] = W @ data[i]
        out = out.astype(dtype, copy=False)
        return out[0] if single else out

    def _check(self, X: np.ndarray) -> tuple[np.ndarray, bool]:
        X = np.asarray(X)
        single = X.ndim == 2
        batch = _as_trials(X[None] if single else X)
        if batch.shape[1] != self.n_chans:
            raise ValueError(
                f"OnlineEA was built for {self.n_chans} channels, got {batch.shape[1]}"
            )
        return batch, single


# --------------------------------------------------------------------------- standardisation


def exponential_moving_standardize(
    X: np.ndarray,
    factor_new: float = 1e-3,
    init_block_size: int | None = 1000,
    eps: float = 1e-4,
) -> np.ndarray:
    """Exponential moving standardisation of each trial, Schirrmeister et al. [Schirrmeister2017]_.

    Each channel is demeaned by an exponential moving mean ``m_t`` and divided by the square
    root of an exponential moving variance ``v_t`` (both with forgetting factor ``factor_new``);
    the first ``init_block_size`` samples are z-scored with the block's plain mean and standard
    deviation. Calls ``braindecode.preprocessing.exponential_moving_standardize`` on each
    ``(n_chans, n_times)`` trial; each trial starts afresh (the statistics do not carry over
    from one trial to the next).

    Parameters
    ----------
    X : np.ndarray, shape (n_trials, n_chans, n_times)
        Trials.
    factor_new : float
        Weight of the newest sample in the moving statistics, in ``(0, 1]``.
    init_block_size : int or None
        Samples standardised with plain statistics at the start of each trial (``None``: none).
    eps : float
        Lower bound of the standard deviation.

    Returns
    -------
    np.ndarray, shape (n_trials, n_chans, n_times)
        Same dtype as ``X``.
    """
    from braindecode.preprocessing import exponential_moving_standardize as _ems

    X = _as_trials(X)
    if not 0 < factor_new <= 1:
        raise ValueError(f"factor_new must lie in (0, 1], got {factor_new}")
    if init_block_size is not None and int(init_block_size) < 1:
        raise ValueError(f"init_block_size must be >= 1 or None, got {init_block_size}")
    data = X.astype(np.float64, copy=False)
    out = np.stack(
        [
            _ems(trial, factor_new=factor_new, init_block_size=init_block_size, eps=eps)
            for trial in data
        ]
    )
    return out.astype(_out_dtype(X), copy=False)
