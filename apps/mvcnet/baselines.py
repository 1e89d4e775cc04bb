"""Baseline decoders of MVCNet's comparison, run in the same harness as MVCNet.

Every baseline sees the same preprocessed trials and the same splits (:mod:`~.protocols`);
:func:`fit_predict` trains on one split's training part and returns class probabilities for its
test part.

``csp_lda``
    Common spatial patterns (8 components, Ledoit-Wolf regularised covariances, log-variance
    features) + linear discriminant analysis [Ramoser2000]_, with ``mne.decoding.CSP`` and
    scikit-learn.
``eegnet``
    braindecode's ``EEGNet`` [Lawhern2018]_ with the hyper-parameters the MVCNet authors ran it
    with (their ``utils/network.py`` and ``MVCNet_CO.py``): ``F1, D, F2 = 4, 2, 8``, temporal
    kernel ``sfreq // 2`` samples (125 at 250 Hz), dropout 0.25 (:data:`EEGNET_AUTHORS`); the
    rest (poolings 4 and 8, separable kernel 16) are EEGNet's and braindecode's defaults.
``shallow``, ``conformer``
    braindecode's ``ShallowFBCSPNet`` [Schirrmeister2017]_ and ``EEGConformer`` [Song2023]_ with
    their default hyper-parameters.
``ifnet``
    IFNet [Wang2023]_ with a **single band**, as the MVCNet authors ran it for their "IFNet"
    column (``radix=1`` in their ``models/IFNet.py``; the same network is MVCNet's CNN
    branch): pointwise ``Conv1d(C -> 64, k=1)`` + BN, depthwise ``Conv1d(64, k=63)`` + BN,
    GELU, ``AvgPool1d(pool)``, dropout 0.5, flatten, linear classifier; truncated-normal
    (std 0.01) weights and zero biases, as the authors. ``pool`` is the authors' (125 at
    250 Hz, 128 at 512 Hz, see :func:`ifnet_pool`). Written here
    from that description; the authors' "drop the last sample" before pooling only trims their
    1001-sample MOABB windows, ours have 1000 and the pooling floors, so it is left out.
``ifnet_fb``
    braindecode's ``IFNet``: the original two-band filter bank (4-16 and 16-40 Hz), default
    hyper-parameters; not the authors' column, kept under its own name.

The networks are trained with the core :class:`medcl.contrastive.engine.Engine`: cross-entropy,
Adam (``lr``, no weight decay, no scheduler), shuffled mini-batches of ``batch_size``,
``epochs`` epochs, seeded. Every epoch uses every training trial: the last partial batch is
kept (the authors' ``drop_last=False``), except a final batch of exactly one trial, which is
dropped (batch norm cannot normalise one sample; the authors skip it too): the loader is
MVCNet's own, :func:`medcl.mvcnet.train.make_loader`, so every model of the harness takes the
same steps per epoch. As in MVCNet's protocol [Wang2025]_, the model of
the **last epoch** is evaluated (no early stopping, no model selection on test data).

Input scaling, the same for all of them: each channel is z-scored with the mean and standard
deviation of the **training** trials (over trials and time); the test trials reuse those
statistics. This is a per-channel linear rescaling, so it does not change what alignment (EA)
did upstream, and it keeps µV-scale inputs in the range the networks were designed for.

References
----------
.. [Ramoser2000] H. Ramoser, J. Müller-Gerking, G. Pfurtscheller, "Optimal spatial filtering of
   single trial EEG during imagined hand movement", IEEE Trans. Rehabil. Eng. 8(4):441-446, 2000.
.. [Lawhern2018] V. J. Lawhern et al., "EEGNet: a compact convolutional neural network for
   EEG-based brain-computer interfaces", J. Neural Eng. 15(5):056013, 2018.
.. [Schirrmeister2017] R. T. Schirrmeister et al., "Deep learning with convolutional neural
   networks for EEG decoding and visualization", Human Brain Mapping 38(11):5391-5420, 2017.
.. [Song2023] Y. Song, Q. Zheng, B. Liu, X. Gao, "EEG Conformer: convolutional transformer for
   EEG decoding and visualization", IEEE Trans. Neural Syst. Rehabil. Eng. 31:710-719, 2023.
.. [Wang2023] J. Wang, L. Yao, Y. Wang, "IFNet: an interactive frequency convolutional neural
   network for enhancing motor imagery decoding from EEG", IEEE Trans. Neural Syst. Rehabil.
   Eng. 31:1900-1911, 2023.
.. [Wang2025] Z. Wang, S. Li, X. Chen, D. Wu, "MVCNet: Multi-View Contrastive Network for Motor
   Imagery Classification", Knowledge-Based Systems 328:114205, 2025, arXiv:2502.17482.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "BASELINES",
    "EEGNET_AUTHORS",
    "MIN_N_TIMES",
    "build_model",
    "fit_predict",
    "ifnet_pool",
    "min_n_times",
    "standardize_channels",
]

BASELINES = ("csp_lda", "eegnet", "shallow", "conformer", "ifnet", "ifnet_fb")

#: EEGNet as the MVCNet authors ran it (``F1, D, F2 = 4, 2, 8``, dropout 0.25); the temporal
#: kernel is ``sfreq // 2`` samples (``kernLength=int(sample_rate // 2)`` in their code).
EEGNET_AUTHORS = {"F1": 4, "D": 2, "F2": 8, "drop_prob": 0.25}

#: Shortest trial (samples) of the networks whose limit does not depend on the sampling rate:
#: ShallowFBCSPNet and EEGConformer need a 25-tap temporal convolution followed by a 75-sample
#: pooling window (25 + 75 - 1 = 99); braindecode's IFNet needs one sample per each of its 8
#: temporal segments. EEGNet and the single-band IFNet: see :func:`min_n_times`.
MIN_N_TIMES = {"shallow": 99, "conformer": 99, "ifnet_fb": 8}

#: braindecode's IFNet filter bank has bands 4-16 and 16-40 Hz: the 40 Hz edge must stay below
#: Nyquist.
IFNET_MAX_FREQ = 40.0

#: Feature maps and temporal kernel of the single-band IFNet (the authors' ``embed_dims=64``,
#: ``kernel_size=63``) and its dropout.
IFNET_FILTERS, IFNET_KERNEL, IFNET_DROPOUT = 64, 63, 0.5

#: Number of CSP components (clipped to the number of channels).
CSP_COMPONENTS = 8


def _check_name(name: str) -> None:
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {BASELINES}")


def ifnet_pool(sfreq: float) -> int:
    """Pooling window (samples) of the single-band IFNet at ``sfreq``, as the MVCNet authors.

    Their scripts set ``patch_size = 125`` for the 250 Hz datasets and ``128`` for the 512 Hz
    ones (BNCI2014_002, BNCI2015_001); the rule is MVCNet's CNN branch's,
    :func:`medcl.mvcnet.model.authors_pool` (other rates take the nearer of the two).
    """
    from .model import authors_pool

    return authors_pool(float(sfreq))


def eegnet_kernel(sfreq: float) -> int:
    """EEGNet's temporal kernel (samples) as the MVCNet authors: ``sfreq // 2``."""
    return max(1, int(float(sfreq) // 2))


def min_n_times(name: str, sfreq: float) -> int:
    """Shortest trial (samples) network ``name`` accepts at ``sfreq``.

    EEGNet's two poolings (4 and 8) after its "same"-padded temporal convolution leave one step
    from 28 samples on with an odd kernel (27 with an even one, which adds a sample); the
    single-band IFNet needs one pooling window (:func:`ifnet_pool`); the others are in
    :data:`MIN_N_TIMES`.
    """
    if name == "eegnet":
        return 28 if eegnet_kernel(sfreq) % 2 else 27
    if name == "ifnet":
        return ifnet_pool(sfreq)
    return MIN_N_TIMES[name]


def _ifnet_single_band(n_chans: int, n_times: int, sfreq: float, n_classes: int) -> nn.Module:
    """The single-band IFNet of the module docstring (``(B, C, T)`` -> logits ``(B, K)``)."""
    import torch
    from torch import nn

    pool = ifnet_pool(sfreq)
    net = nn.Sequential(
        nn.Conv1d(n_chans, IFNET_FILTERS, 1, bias=False),
        nn.BatchNorm1d(IFNET_FILTERS),
        nn.Conv1d(IFNET_FILTERS, IFNET_FILTERS, IFNET_KERNEL, padding=IFNET_KERNEL // 2,
                  groups=IFNET_FILTERS, bias=False),
        nn.BatchNorm1d(IFNET_FILTERS),
        nn.GELU(),
        nn.AvgPool1d(pool, pool),
        nn.Dropout(IFNET_DROPOUT),
        nn.Flatten(),
        nn.Linear(IFNET_FILTERS * (n_times // pool), n_classes),
    )
    for module in net.modules():
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            torch.nn.init.trunc_normal_(module.weight, std=0.01)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    return net


def standardize_channels(
    X_train: np.ndarray, X_test: np.ndarray, eps: float = 1e-8
) -> tuple[np.ndarray, np.ndarray]:
    """Z-score each channel with the training trials' statistics (over trials and time).

    Parameters
    ----------
    X_train : np.ndarray, shape (n_train, n_chans, n_times)
    X_test : np.ndarray, shape (n_test, n_chans, n_times)
    eps : float
        Lower bound of the standard deviation (flat channels).

    Returns
    -------
    tuple of np.ndarray
        Standardised ``(X_train, X_test)`` as float32.
    """
    mean = X_train.mean(axis=(0, 2), keepdims=True, dtype=np.float64)
    std = X_train.std(axis=(0, 2), keepdims=True, dtype=np.float64)
    std = np.maximum(std, eps)
    return (
        ((X_train - mean) / std).astype(np.float32),
        ((X_test - mean) / std).astype(np.float32),
    )


def build_model(
    name: str, *, n_chans: int, n_times: int, sfreq: float, n_classes: int
) -> nn.Module:
    """One of braindecode's networks, sized for the data.

    Parameters
    ----------
    name : {"eegnet", "shallow", "conformer", "ifnet", "ifnet_fb"}
        The network (see the module docstring).
    n_chans, n_times : int
        Trial shape.
    sfreq : float
        Sampling rate (Hz).
    n_classes : int
        Number of outputs.

    Returns
    -------
    torch.nn.Module
        Maps ``(batch, n_chans, n_times)`` to logits ``(batch, n_classes)``.

    Raises
    ------
    ValueError
        A shape or sampling rate the network cannot handle (the message names the model and
        the limit).
    """
    _check_name(name)
    if name == "csp_lda":
        raise ValueError("csp_lda is not a neural network; fit_predict builds it")
    min_times = min_n_times(name, sfreq)
    if n_times < min_times:
        raise ValueError(
            f"baseline {name!r} needs trials of at least {min_times} samples, got n_times="
            f"{n_times} (at {sfreq:g} Hz); use longer windows or another baseline"
        )
    if name == "ifnet_fb" and not sfreq > 2 * IFNET_MAX_FREQ:
        raise ValueError(
            f"baseline 'ifnet_fb' filters up to {IFNET_MAX_FREQ:g} Hz and needs sfreq > "
            f"{2 * IFNET_MAX_FREQ:g} Hz, got sfreq={sfreq:g}"
        )
    from braindecode.models import EEGConformer, EEGNet, IFNet, ShallowFBCSPNet

    common: dict[str, Any] = {
        "n_chans": int(n_chans),
        "n_outputs": int(n_classes),
        "n_times": int(n_times),
        "sfreq": float(sfreq),
    }
    with warnings.catch_warnings():
        # braindecode warns about deprecated defaults and untested channel counts
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            if name == "eegnet":
                return EEGNet(**common, final_conv_length="auto",
                              kernel_length=eegnet_kernel(sfreq), **EEGNET_AUTHORS)
            if name == "ifnet":
                return _ifnet_single_band(int(n_chans), int(n_times), float(sfreq),
                                          int(n_classes))
            if name == "shallow":
                return ShallowFBCSPNet(**common, final_conv_length="auto")
            if name == "conformer":
                return EEGConformer(**common, final_fc_length="auto")
            return IFNet(**common)
        except (RuntimeError, ValueError, AssertionError) as err:
            raise ValueError(
                f"baseline {name!r} cannot be built for n_chans={n_chans}, n_times={n_times}, "
                f"sfreq={sfreq:g}: {err}"
            ) from err


def _csp_lda_proba(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, n_classes: int
) -> np.ndarray:
    from mne.decoding import CSP
    from mne.utils import use_log_level
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import Pipeline

    n_components = min(CSP_COMPONENTS, X_train.shape[1])
    pipe = Pipeline(
        [
            ("csp", CSP(n_components=n_components, reg="ledoit_wolf", log=True)),
            ("lda", LinearDiscriminantAnalysis()),
        ]
    )
    with warnings.catch_warnings(), use_log_level("error"):
        warnings.simplefilter("ignore", RuntimeWarning)
        pipe.fit(X_train.astype(np.float64), y_train)
        proba = pipe.predict_proba(X_test.astype(np.float64))
    out = np.zeros((X_test.shape[0], n_classes), dtype=np.float64)
    out[:, pipe.classes_.astype(int)] = proba
    return out


def _accelerator(device: str) -> tuple[str, int | str]:
    """``device`` ("cpu", "cuda", "cuda:1", "auto") as Fabric ``(accelerator, devices)``."""
    device = str(device)
    if device in ("cpu", "auto"):
        return device, 1
    if device in ("cuda", "gpu"):
        return "cuda", 1
    if device.startswith("cuda:") and device[5:].isdigit():
        return "cuda", f"{int(device[5:])},"
    raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")


def _train_network(
    name: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    *,
    sfreq: float,
    n_classes: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    precision: str | None,
) -> np.ndarray:
    import torch
    from torch.nn import functional as F
    from torch.utils.data import TensorDataset

    from medcl.contrastive.engine import Engine, EngineConfig

    from .train import make_loader

    n_chans, n_times = X_train.shape[1:]
    accelerator, devices = _accelerator(device)
    engine = Engine(
        EngineConfig(
            max_epochs=epochs,
            seed=seed,
            accelerator=accelerator,
            devices=devices,
            precision=precision,
            progress=False,
        ),
        run_dir=None,
    )
    # the engine has seeded every generator: the initial weights depend on `seed` only
    model = build_model(name, n_chans=n_chans, n_times=n_times, sfreq=sfreq, n_classes=n_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    dataset = TensorDataset(torch.from_numpy(X_train), torch.from_numpy(y_train.astype(np.int64)))
    loader = make_loader(dataset, batch_size, generator=torch.Generator())

    def step(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        xb, yb = batch
        return F.cross_entropy(net(xb), yb)

    if epochs > 0:
        model = engine.fit(model, optimizer, loader, step)
    target = engine.fabric.device
    model = model.to(target).eval()
    probs: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, X_test.shape[0], batch_size):
            xb = torch.from_numpy(X_test[start : start + batch_size]).to(target)
            logits = model(xb).float()
            probs.append(torch.softmax(logits, dim=1).cpu().numpy())
    if not probs:
        return np.zeros((0, n_classes))
    return np.concatenate(probs).astype(np.float64)


def fit_predict(
    name: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    *,
    sfreq: float,
    n_classes: int,
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    precision: str | None = None,
) -> np.ndarray:
    """Train a baseline on one split and predict class probabilities for its test trials.

    Parameters
    ----------
    name : {"csp_lda", "eegnet", "shallow", "conformer", "ifnet", "ifnet_fb"}
        The baseline (see the module docstring).
    X_train : np.ndarray, shape (n_train, n_chans, n_times)
        Preprocessed training trials.
    y_train : np.ndarray of int, shape (n_train,)
        Labels in ``0 .. n_classes - 1``.
    X_test : np.ndarray, shape (n_test, n_chans, n_times)
        Preprocessed test trials.
    sfreq : float
        Sampling rate (Hz).
    n_classes : int
        Number of classes (columns of the output).
    epochs, batch_size, lr, seed : int, int, float, int
        Training of the networks (ignored by ``csp_lda``); the last epoch's model predicts.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (networks only).
    precision : str or None
        Engine precision (networks only): ``None`` is the engine's default, automatic mixed
        precision on CUDA (bf16 where supported) and ``"32-true"`` on CPU; pass ``"32-true"``
        for full precision on CUDA too.

    Returns
    -------
    np.ndarray, shape (n_test, n_classes)
        Class probabilities (rows sum to 1; a class absent from ``y_train`` gets 0 from
        ``csp_lda``).
    """
    _check_name(name)
    X_train = np.asarray(X_train)
    X_test = np.asarray(X_test)
    y_train = np.asarray(y_train)
    if X_train.ndim != 3 or X_test.ndim != 3:
        raise ValueError(
            "X_train and X_test must have shape (n_trials, n_chans, n_times), got "
            f"{X_train.shape} and {X_test.shape}"
        )
    if X_train.shape[1:] != X_test.shape[1:]:
        raise ValueError(
            f"X_train trials {X_train.shape[1:]} and X_test trials {X_test.shape[1:]} differ"
        )
    if y_train.shape != (X_train.shape[0],):
        raise ValueError(f"y_train must have shape ({X_train.shape[0]},), got {y_train.shape}")
    if X_train.shape[0] == 0:
        raise ValueError("X_train has no trial")
    if not np.issubdtype(y_train.dtype, np.integer):
        raise ValueError(f"y_train must hold integer labels, got dtype {y_train.dtype}")
    if n_classes < 2 or y_train.min() < 0 or y_train.max() >= n_classes:
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1} with n_classes >= 2; got n_classes="
            f"{n_classes} and labels {np.unique(y_train).tolist()}"
        )
    if np.unique(y_train).size < 2:
        raise ValueError(f"baseline {name!r}: y_train holds a single class; nothing to learn")
    for key, value in (("epochs", epochs), ("batch_size", batch_size)):
        if int(value) != value or value < (0 if key == "epochs" else 1):
            raise ValueError(
                f"{key} must be a {'non-negative' if key == 'epochs' else 'positive'}"
                f" integer, got {value}"
            )
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")

    Xtr, Xte = standardize_channels(X_train, X_test)
    if name == "csp_lda":
        return _csp_lda_proba(Xtr, y_train, Xte, n_classes)
    return _train_network(
        name,
        Xtr,
        y_train,
        Xte,
        sfreq=sfreq,
        n_classes=n_classes,
        epochs=int(epochs),
        batch_size=int(batch_size),
        lr=lr,
        seed=seed,
        device=device,
        precision=precision,
    )
