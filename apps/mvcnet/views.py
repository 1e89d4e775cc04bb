"""Augmented "views" of EEG trial batches for MVCNet's cross-view contrastive learning.

Paper: Wang, Li, Chen, Wu, "MVCNet: Multi-View Contrastive Network for Motor Imagery
Classification", Knowledge-Based Systems 2025, arXiv:2502.17482 — the augmentation pipeline
over the time, frequency and spatial domains (paper Table 2: Flip, Noise, Scale, FShift, FSurr,
CR, HS). The authors train with three views per batch: sign flip, frequency shift and channel
reflection (:data:`DEFAULT_VIEWS`).

Every view is a callable ``view(x, y, *, generator=None) -> (x_view, y_view)`` on a batch
``x: (B, C, T)`` of trials and ``y: (B,)`` of integer class indices into ``classes``. Views are
pure PyTorch, run on the batch's device, never modify their inputs and keep the trial order
(``x_view[i]`` is the view of ``x[i]``, which the cross-view loss pairs). All randomness is drawn
from ``generator`` (a ``torch.Generator``; the global RNG when ``None``), on the generator's
device, then moved to the batch's device. Views that are a fixed signed channel permutation (sign
flip, channel reflection) say so through ``channel_map`` (:meth:`ViewPipeline.channel_maps`),
which lets the network share work between them and the raw trials.

Example
-------
>>> import torch
>>> pipe = ViewPipeline(DEFAULT_VIEWS, ["C3", "Cz", "C4"], 250.0, ["left_hand", "right_hand"],
...                     seed=0)
>>> views = pipe(torch.randn(8, 3, 500), torch.randint(0, 2, (8,)))
>>> [tuple(v[0].shape) for v in views]
[(8, 3, 500), (8, 3, 500), (8, 3, 500)]
"""

from __future__ import annotations

import inspect
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "DEFAULT_VIEWS",
    "VIEW_NAMES",
    "AmplitudeScale",
    "ChannelDropout",
    "ChannelReflection",
    "FrequencyShift",
    "FTSurrogate",
    "GaussianNoise",
    "HalfMix",
    "SignFlip",
    "TimeMask",
    "ViewPipeline",
    "analytic_signal",
    "make_view",
    "mirror_channel",
    "mirror_class_map",
    "reflection_permutation",
]

VIEW_NAMES: tuple[str, ...] = (
    "flip",
    "noise",
    "scale",
    "mask",
    "freq_shift",
    "ft_surrogate",
    "reflect",
    "ch_dropout",
    "half_mix",
)
DEFAULT_VIEWS: tuple[str, ...] = ("flip", "freq_shift", "reflect")

View = Callable[..., tuple[Tensor, Tensor]]
ChannelMap = tuple[list[int], list[float]]


# ---------------------------------------------------------------------------- random helpers
def _device(generator: torch.Generator | None, x: Tensor) -> torch.device:
    return generator.device if generator is not None else x.device


def _rand(shape: Sequence[int], x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform ``[0, 1)`` numbers drawn on the generator's device, returned on ``x``'s."""
    r = torch.rand(tuple(shape), generator=generator, device=_device(generator, x))
    return r.to(device=x.device, dtype=x.dtype)


def _randn(shape: Sequence[int], x: Tensor, generator: torch.Generator | None) -> Tensor:
    r = torch.randn(tuple(shape), generator=generator, device=_device(generator, x))
    return r.to(device=x.device, dtype=x.dtype)


def _randint(
    low: int, high: int, shape: Sequence[int], x: Tensor, generator: torch.Generator | None
) -> Tensor:
    r = torch.randint(low, high, tuple(shape), generator=generator, device=_device(generator, x))
    return r.to(x.device)


def _check_batch(x: Tensor, y: Tensor, n_chans: int | None = None) -> None:
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, C, T), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    if n_chans is not None and x.shape[1] != n_chans:
        raise ValueError(
            f"x has {x.shape[1]} channels but the view was built for {n_chans} channel names"
        )


# ---------------------------------------------------------------------------- montage helpers
_TEN_TWENTY = re.compile(r"^([A-Za-z]+?)(\d+|[zZ])$")


def mirror_channel(name: str) -> str | None:
    """Name of the 10-20 electrode mirroring ``name`` across the midline, or ``None``.

    In the 10-20 / 10-10 system odd numbers lie over the left hemisphere and even numbers over
    the right, the mirror of ``2k - 1`` being ``2k`` (C3 <-> C4, FC1 <-> FC2, T7 <-> T8); ``z``
    marks the midline. Midline and unparseable names (``"Cz"``, ``"EOG-left"``) return ``None``.
    The letters keep their case.
    """
    m = _TEN_TWENTY.match(name.strip())
    if m is None or m.group(2) in ("z", "Z"):
        return None
    num = int(m.group(2))
    if num == 0:
        return None
    return f"{m.group(1)}{num + 1 if num % 2 else num - 1}"


def _hemisphere(name: str) -> str:
    """``"left"``, ``"right"`` or ``"mid"`` (midline or unknown) for a 10-20 name."""
    m = _TEN_TWENTY.match(name.strip())
    if m is None or m.group(2) in ("z", "Z") or int(m.group(2)) == 0:
        return "mid"
    return "left" if int(m.group(2)) % 2 else "right"


def reflection_permutation(
    ch_names: Sequence[str], pairs: Sequence[tuple[str, str]] | None = None
) -> list[int]:
    """Channel permutation reflecting a montage across the midline.

    Parameters
    ----------
    ch_names : sequence of str
        Channel names of the montage, in data order.
    pairs : sequence of (str, str), optional
        Explicit (left, right) name pairs; by default every channel whose 10-20 mirror
        (:func:`mirror_channel`) is in the montage is paired with it (case-insensitive).

    Returns
    -------
    list of int
        ``perm`` with ``x[:, perm]`` the reflected batch; midline channels and channels without a
        partner in the montage map to themselves. ``perm`` is an involution.
    """
    index = {n.strip().lower(): i for i, n in enumerate(ch_names)}
    perm = list(range(len(ch_names)))
    if pairs is None:
        found = [(n, m) for n in ch_names if (m := mirror_channel(n)) is not None]
        pairs = [(a, b) for a, b in found if b.strip().lower() in index]
    for a, b in pairs:
        missing = [n for n in (a, b) if n.strip().lower() not in index]
        if missing:
            raise ValueError(f"reflection pair {(a, b)}: {missing} not among {list(ch_names)}")
        ia, ib = index[a.strip().lower()], index[b.strip().lower()]
        perm[ia], perm[ib] = ib, ia
    return perm


def _norm_class(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


_SIDE_TOKENS = {"l": "left", "lh": "left", "r": "right", "rh": "right"}
_NEUTRAL_WORDS = ("feet", "foot", "tongue", "rest", "idle", "baseline", "both", "relax",
                  "unknown", "none")


def _lateral(name: str) -> tuple[str, str] | None:
    """``(side, key)`` of a left/right class name, the key being the name with its side blanked
    (``left_hand`` and ``right_hand`` share ``*hand``), or ``None`` if it names no side.

    Sides: ``left``/``right`` anywhere in the name (``LeftHand``, ``left_hand``), or the whole
    tokens ``l``, ``r``, ``lh``, ``rh`` between ``_``, ``-`` or spaces (``lh``, ``hand_L``).
    """
    tokens = re.split(r"[\s_\-]+", str(name).strip().lower())
    for i, tok in enumerate(tokens):
        if tok in _SIDE_TOKENS:
            return _SIDE_TOKENS[tok], "".join(tokens[:i] + ["*" + tok[1:]] + tokens[i + 1:])
    norm = _norm_class(name)
    for side in ("left", "right"):
        if side in norm:
            return side, norm.replace(side, "*", 1)
    return None


def mirror_class_map(classes: Sequence[str]) -> list[int]:
    """Label map of a left/right reflection: left <-> right classes, others unchanged.

    A side is ``left``/``right`` anywhere in the name (case and separators ignored:
    ``"left_hand"``, ``"Left Hand"``, ``"lefthand"`` pair with ``"right_hand"``) or one of the
    whole tokens ``l``/``r``/``lh``/``rh`` (``lh`` <-> ``rh``, ``L`` <-> ``R``, ``hand_l`` <->
    ``hand_r``). A class whose mirror is not among ``classes`` (right hand vs feet) and classes
    without a side (feet, tongue, rest) keep their label, as in the authors' code.

    Raises
    ------
    medcl.io.ConfigError
        When the names do not say which classes are lateral but a left/right pair may hide among
        them (two or more classes of unknown meaning, or one beside a lateral class without its
        mirror, e.g. ``["a", "b"]`` or ``["left", "dx"]``): the reflection would swap nothing
        and silently teach the wrong labels.

    Returns
    -------
    list of int
        ``label_map`` with ``label_map[k]`` the reflected label of class ``k``.
    """
    sides = [_lateral(c) for c in classes]
    out = list(range(len(classes)))
    for k, side in enumerate(sides):
        if side is not None:
            mirror = ("right" if side[0] == "left" else "left", side[1])
            out[k] = sides.index(mirror) if mirror in sides else k
    unknown = [c for c, side in zip(classes, sides, strict=True) if side is None
               and not any(w in _norm_class(c) for w in _NEUTRAL_WORDS)]
    unpaired = [c for k, c in enumerate(classes) if sides[k] is not None and out[k] == k]
    if len(unknown) >= 2 or (unknown and unpaired):
        from medcl.io import ConfigError

        raise ConfigError(
            f"channel reflection swaps left/right labels, but the class names {list(classes)} "
            f"do not say which is left and which right ({', '.join(unknown)} unrecognised)",
            fix="name the classes left/right in --events (e.g. left=769,right=770,feet=771)")
    return out


def _same_class_partner(y: Tensor, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """For each trial, a uniformly drawn *other* trial of the same class (itself if alone)."""
    partner = torch.arange(y.shape[0], device=y.device)
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        n = idx.numel()
        if n < 2:
            continue
        offset = _randint(1, n, (n,), x, generator).to(y.device)
        partner[idx] = idx[(torch.arange(n, device=y.device) + offset) % n]
    return partner


# ---------------------------------------------------------------------------- spectral helpers
def analytic_signal(x: Tensor, n_fft: int | None = None) -> Tensor:
    """Analytic signal ``x + i H(x)`` along the last axis, computed with the FFT.

    The spectrum of ``x`` (zero-padded to ``n_fft`` samples) keeps its DC (and, for even
    ``n_fft``, Nyquist) bin, doubles the positive frequencies and zeroes the negative ones; the
    inverse FFT is the analytic signal (Marple, IEEE TSP 47:2600, 1999; ``scipy.signal.hilbert``).

    Parameters
    ----------
    x : Tensor, shape (..., T)
        Real signal.
    n_fft : int, optional
        FFT length (``>= T``); default ``T``.

    Returns
    -------
    Tensor, shape (..., n_fft), complex
    """
    n = x.shape[-1] if n_fft is None else int(n_fft)
    if n < x.shape[-1]:
        raise ValueError(f"n_fft={n} is shorter than the signal ({x.shape[-1]} samples)")
    spec = torch.fft.fft(x, n=n, dim=-1)
    h = torch.zeros(n, dtype=x.dtype, device=x.device)
    h[0] = 1.0
    if n % 2 == 0:
        h[1 : n // 2] = 2.0
        h[n // 2] = 1.0
    else:
        h[1 : (n + 1) // 2] = 2.0
    return torch.fft.ifft(spec * h, dim=-1)


# ---------------------------------------------------------------------------- views
class _View(ABC):
    """Base class: input checks, a ``__repr__`` listing the parameters."""

    _n_chans: int | None = None

    def __call__(
        self, x: Tensor, y: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        _check_batch(x, y, self._n_chans)
        return self._apply(x, y, generator)

    @abstractmethod
    def _apply(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """The view itself, on a checked batch."""

    def _params(self) -> dict[str, Any]:
        return {}

    def channel_map(self, n_chans: int) -> ChannelMap | None:
        """``(perm, sign)`` when the view is a fixed signed channel permutation,
        ``x_view[:, i] = sign[i] * x[:, perm[i]]`` for every batch, else ``None``.

        :class:`~medcl.mvcnet.model.MVCNet`'s fast path uses it to derive the Transformer's
        input projection of such a view from that of the raw trials instead of recomputing it;
        the plain path ignores it.
        """
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class SignFlip(_View):
    """Sign flip ``x -> -x`` (paper Table 2 "Flip"; the authors' ``neg`` view)."""

    def _apply(self, x, y, generator):
        return -x, y.clone()

    def channel_map(self, n_chans):
        return list(range(n_chans)), [-1.0] * n_chans


class GaussianNoise(_View):
    """Additive Gaussian noise scaled by each trial's standard deviation (Table 2 "Noise").

    ``x_i + std * sigma_i * N(0, 1)`` with ``sigma_i`` the standard deviation of trial ``i``
    over channels and time. (The authors add uniform noise of width ``sigma_i``; a Gaussian of
    relative std 0.1 is the milder, more common choice.)

    Parameters
    ----------
    std : float, default 0.1
        Noise standard deviation relative to the trial's.
    """

    def __init__(self, std: float = 0.1) -> None:
        if std < 0:
            raise ValueError(f"std must be >= 0, got {std}")
        self.std = float(std)

    def _params(self):
        return {"std": self.std}

    def _apply(self, x, y, generator):
        sigma = x.std(dim=(1, 2), keepdim=True)
        return x + self.std * sigma * _randn(x.shape, x, generator), y.clone()


class AmplitudeScale(_View):
    """Amplitude scaling by one random factor per trial, uniform in ``[low, high]``
    (Table 2 "Scale"; the authors use a fixed factor ``1 +/- 0.2``).
    """

    def __init__(self, low: float = 0.8, high: float = 1.2) -> None:
        if not 0 < low <= high:
            raise ValueError(f"need 0 < low <= high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    def _params(self):
        return {"low": self.low, "high": self.high}

    def _apply(self, x, y, generator):
        factor = self.low + (self.high - self.low) * _rand((x.shape[0], 1, 1), x, generator)
        return x * factor, y.clone()


class TimeMask(_View):
    """Time masking: zero one random segment of ``round(fraction * T)`` samples per trial
    (all channels), at a uniformly drawn start.
    """

    def __init__(self, fraction: float = 0.1) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        self.fraction = float(fraction)

    def _params(self):
        return {"fraction": self.fraction}

    def _apply(self, x, y, generator):
        n_times = x.shape[-1]
        length = min(n_times, int(round(self.fraction * n_times)))
        start = _randint(0, n_times - length + 1, (x.shape[0], 1), x, generator)
        t = torch.arange(n_times, device=x.device)
        mask = (t >= start) & (t < start + length)  # (B, T)
        return x.masked_fill(mask[:, None, :], 0.0), y.clone()


class FrequencyShift(_View):
    """Frequency shift through the analytic signal (Table 2 "FShift").

    ``x' = Re(x_a(t) * exp(2 pi i * df * t))`` with ``x_a`` the analytic signal
    (:func:`analytic_signal`, zero-padded to the next power of two as in the authors' code and
    braindecode) and ``t = arange(T) / sfreq`` at the recording's real sampling rate. (The
    authors' code hard-codes ``1/250`` s, which shifts 512-Hz data by 2.05x the intended
    amount.) Every spectral component moves by ``df`` Hz.

    Parameters
    ----------
    sfreq : float
        Sampling rate of the batch in Hz.
    delta_hz : float, default 0.1
        Shift in Hz (the authors' +0.1 Hz) or, when ``randomize``, its maximum magnitude.
    randomize : bool, default False
        Draw one shift per trial uniformly from ``[-delta_hz, delta_hz]``.
    """

    def __init__(self, sfreq: float, delta_hz: float = 0.1, randomize: bool = False) -> None:
        if not sfreq > 0:
            raise ValueError(f"sfreq must be > 0, got {sfreq}")
        if randomize and delta_hz < 0:
            raise ValueError(f"delta_hz must be >= 0 when randomize=True, got {delta_hz}")
        self.sfreq, self.delta_hz, self.randomize = float(sfreq), float(delta_hz), bool(randomize)

    def _params(self):
        return {"sfreq": self.sfreq, "delta_hz": self.delta_hz, "randomize": self.randomize}

    def _apply(self, x, y, generator):
        n_times = x.shape[-1]
        n_fft = 1 << (n_times - 1).bit_length()
        if self.randomize:
            shift = self.delta_hz * (2 * _rand((x.shape[0], 1, 1), x, generator) - 1)
        else:
            shift = torch.full((x.shape[0], 1, 1), self.delta_hz, dtype=x.dtype, device=x.device)
        t = torch.arange(n_times, dtype=x.dtype, device=x.device) / self.sfreq
        xa = analytic_signal(x, n_fft)[..., :n_times]
        angle = 2 * math.pi * shift * t
        shifted = xa.real * torch.cos(angle) - xa.imag * torch.sin(angle)
        return shifted.contiguous(), y.clone()


class FTSurrogate(_View):
    """Fourier-transform surrogate: random phases, magnitudes kept (Table 2 "FSurr").

    Each positive-frequency Fourier coefficient of a trial is rotated by a phase drawn uniformly
    from ``[0, 2 pi * phase_noise)``; DC (and Nyquist for even ``T``) stay real, so the output is
    real and its amplitude spectrum is exactly the input's (Schreiber & Schmitz, Physica D 142,
    2000; Rommel et al., J. Neural Eng. 2022). By default one phase draw per trial is shared by
    all channels, which keeps the cross-channel phase relations (spatial information), as the
    authors do (braindecode ``channel_indep=False``).

    Parameters
    ----------
    phase_noise : float, default 0.5
        Fraction of the full turn the phases are drawn from: 0.5 -> ``[0, pi)`` (the authors'
        braindecode setting); 1.0 -> a fully random-phase surrogate.
    channel_indep : bool, default False
        Draw phases independently per channel.
    """

    def __init__(self, phase_noise: float = 0.5, channel_indep: bool = False) -> None:
        if not 0 <= phase_noise <= 1:
            raise ValueError(f"phase_noise must be in [0, 1], got {phase_noise}")
        self.phase_noise, self.channel_indep = float(phase_noise), bool(channel_indep)

    def _params(self):
        return {"phase_noise": self.phase_noise, "channel_indep": self.channel_indep}

    def _apply(self, x, y, generator):
        n_times = x.shape[-1]
        spec = torch.fft.rfft(x, dim=-1)
        n_ch = x.shape[1] if self.channel_indep else 1
        phase = (
            2 * math.pi * self.phase_noise * _rand((x.shape[0], n_ch, spec.shape[-1]), x, generator)
        )
        phase[..., 0] = 0.0
        if n_times % 2 == 0:
            phase[..., -1] = 0.0
        out = torch.fft.irfft(spec * torch.polar(torch.ones_like(phase), phase), n=n_times)
        return out, y.clone()


class ChannelReflection(_View):
    """Channel reflection across the hemispheres, swapping left/right labels (Table 2 "CR").

    Every channel takes the signal of its mirror (C3 <-> C4, FC1 <-> FC2, ...;
    :func:`reflection_permutation`); midline channels and channels whose mirror is not in the
    montage stay. Labels follow :func:`mirror_class_map`: ``left*`` <-> ``right*``; feet,
    tongue, and a hand whose opposite class is absent keep their label (as the authors do for
    right hand vs feet datasets).

    Parameters
    ----------
    ch_names : sequence of str
        Channel names (10-20 labels) in data order.
    classes : sequence of str
        Class names; ``y`` holds indices into it.
    pairs : sequence of (str, str), optional
        Explicit (left, right) pairs overriding the 10-20 rule.
    """

    def __init__(
        self,
        ch_names: Sequence[str],
        classes: Sequence[str],
        pairs: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self.ch_names, self.classes = list(ch_names), list(classes)
        self._n_chans = len(self.ch_names)
        self.perm = reflection_permutation(self.ch_names, pairs)
        self.label_map = mirror_class_map(self.classes)
        if self.perm == list(range(self._n_chans)) and self.label_map != list(
            range(len(self.classes))
        ):
            raise ValueError(
                f"channel reflection found no left/right channel pair in {self.ch_names} but "
                f"would swap the labels of {self.classes}: give 10-20 channel names "
                "(C3, C4, ...) or explicit `pairs`"
            )

    def _params(self):
        swapped = [(self.ch_names[i], self.ch_names[j]) for i, j in enumerate(self.perm) if i < j]
        return {"pairs": swapped, "label_map": self.label_map}

    def _apply(self, x, y, generator):
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
            raise ValueError(f"labels must be in [0, {len(self.classes)}), got {y.tolist()}")
        perm = torch.as_tensor(self.perm, device=x.device)
        label_map = torch.as_tensor(self.label_map, dtype=y.dtype, device=y.device)
        return x.index_select(1, perm), label_map[y]

    def channel_map(self, n_chans):
        if n_chans != self._n_chans:
            raise ValueError(f"the view was built for {self._n_chans} channels, not {n_chans}")
        return list(self.perm), [1.0] * n_chans


class ChannelDropout(_View):
    """Zero each channel of each trial independently with probability ``p`` (no rescaling)."""

    def __init__(self, p: float = 0.1) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)

    def _params(self):
        return {"p": self.p}

    def _apply(self, x, y, generator):
        drop = _rand((x.shape[0], x.shape[1], 1), x, generator) < self.p
        return x.masked_fill(drop, 0.0), y.clone()


class HalfMix(_View):
    """Half-sample mixing within a class (Table 2 "HS").

    Every trial gets one half replaced by the same half of another trial of the **same class**
    drawn uniformly from the batch (a trial alone in its class is kept); labels are unchanged.

    - ``mode="time"`` (default): the second half in time (samples ``T // 2`` onwards).
    - ``mode="hemisphere"``: the authors' variant: the hemisphere ipsilateral to the imagined
      hand is replaced (left-hemisphere channels — odd 10-20 numbers — for ``left*`` classes,
      right-hemisphere ones for ``right*`` classes, the left hemisphere for any other class);
      midline channels are kept. Needs 10-20 ``ch_names``.

    Unlike the authors' code the trial order is kept, so views stay paired with the raw batch.
    """

    def __init__(
        self,
        ch_names: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        mode: str = "time",
    ) -> None:
        if mode not in ("time", "hemisphere"):
            raise ValueError(f"mode must be 'time' or 'hemisphere', got {mode!r}")
        self.mode = mode
        if mode == "hemisphere":
            if ch_names is None or classes is None:
                raise ValueError("mode='hemisphere' needs ch_names and classes")
            side = [_hemisphere(n) for n in ch_names]
            self._n_chans = len(side)
            left = torch.tensor([s == "left" for s in side])
            right = torch.tensor([s == "right" for s in side])
            # (K, C) mask of the channels replaced for each class.
            rows = []
            for c in classes:
                n = _norm_class(c)
                rows.append(right if ("right" in n and "left" not in n) else left)
            self._class_masks = torch.stack(rows) if rows else torch.zeros(0, len(side), dtype=bool)

    def _params(self):
        return {"mode": self.mode}

    def _apply(self, x, y, generator):
        partner = _same_class_partner(y, x, generator).to(x.device)
        other = x.index_select(0, partner)
        if self.mode == "time":
            out = x.clone()
            half = x.shape[-1] // 2
            out[..., half:] = other[..., half:]
            return out, y.clone()
        masks = self._class_masks.to(x.device)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= masks.shape[0]):
            raise ValueError(f"labels must be in [0, {masks.shape[0]}), got {y.tolist()}")
        replace = masks[y.to(x.device)][:, :, None]  # (B, C, 1)
        return torch.where(replace, other, x), y.clone()


# ---------------------------------------------------------------------------- factory
_CLASSES: dict[str, type[_View]] = {
    "flip": SignFlip,
    "noise": GaussianNoise,
    "scale": AmplitudeScale,
    "mask": TimeMask,
    "freq_shift": FrequencyShift,
    "ft_surrogate": FTSurrogate,
    "reflect": ChannelReflection,
    "ch_dropout": ChannelDropout,
    "half_mix": HalfMix,
}
_CONTEXT = ("ch_names", "sfreq", "classes")


def make_view(
    name: str,
    *,
    ch_names: Sequence[str],
    sfreq: float,
    classes: Sequence[str],
    **params: Any,
) -> View:
    """Build the view called ``name`` (one of :data:`VIEW_NAMES`).

    Parameters
    ----------
    name : str
        ``"flip"``, ``"noise"`` (``std``), ``"scale"`` (``low``, ``high``), ``"mask"``
        (``fraction``), ``"freq_shift"`` (``delta_hz``, ``randomize``), ``"ft_surrogate"``
        (``phase_noise``, ``channel_indep``), ``"reflect"`` (``pairs``), ``"ch_dropout"``
        (``p``) or ``"half_mix"`` (``mode``).
    ch_names, sfreq, classes
        The montage, sampling rate (Hz) and class names of the batches; each view takes what it
        needs.
    **params
        View parameters (see the view classes); an unknown one raises ``ValueError``.

    Returns
    -------
    callable
        ``view(x, y, *, generator=None) -> (x_view, y_view)``.
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown view {name!r}; choose from {', '.join(VIEW_NAMES)}")
    cls = _CLASSES[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    tunable = [p for p in accepted if p not in _CONTEXT]
    unknown = sorted(set(params) - set(tunable))
    if unknown:
        raise ValueError(
            f"view {name!r} has no parameter(s) {unknown}; its parameters: {tunable or 'none'}"
        )
    context = {"ch_names": list(ch_names), "sfreq": float(sfreq), "classes": list(classes)}
    kwargs = {k: v for k, v in context.items() if k in accepted}
    return cls(**kwargs, **params)


class ViewPipeline:
    """Several views of one batch, each applied independently to the original batch.

    Parameters
    ----------
    names : sequence of str, default :data:`DEFAULT_VIEWS`
        View names (:data:`VIEW_NAMES`), in output order.
    ch_names, sfreq, classes
        Montage, sampling rate (Hz) and class names, passed to :func:`make_view`.
    seed : int, optional
        Seeds the pipeline's own ``torch.Generator`` (CPU) so that the sequence of views is
        reproducible; ``None`` uses the global torch RNG.
    params : dict, optional
        Per-view parameters, e.g. ``{"freq_shift": {"delta_hz": 0.2}}``.

    Examples
    --------
    >>> pipe = ViewPipeline(["flip", "noise"], ["C3", "C4"], 250.0, ["left", "right"], seed=1)
    >>> pipe
    ViewPipeline(views=[SignFlip(), GaussianNoise(std=0.1)], sfreq=250.0, n_chans=2, seed=1)
    """

    def __init__(
        self,
        names: Sequence[str] = DEFAULT_VIEWS,
        ch_names: Sequence[str] = (),
        sfreq: float = 250.0,
        classes: Sequence[str] = (),
        seed: int | None = None,
        *,
        params: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        params = dict(params or {})
        stray = sorted(set(params) - set(names))
        if stray:
            raise ValueError(f"params given for views not in the pipeline: {stray}")
        self.names = tuple(names)
        self.sfreq = float(sfreq)
        self.ch_names, self.classes = list(ch_names), list(classes)
        self.seed = seed
        self.views: list[View] = [
            make_view(
                n,
                ch_names=self.ch_names,
                sfreq=self.sfreq,
                classes=self.classes,
                **params.get(n, {}),
            )
            for n in self.names
        ]
        self.generator = None if seed is None else torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return len(self.views)

    def __call__(self, x: Tensor, y: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Views of ``x: (B, C, T)``, ``y: (B,)``: one ``(x_view, y_view)`` per view name."""
        return [view(x, y, generator=self.generator) for view in self.views]

    def channel_maps(self, n_chans: int) -> list[ChannelMap | None]:
        """Each view's :meth:`~_View.channel_map` (``None`` for views that are not a fixed
        signed channel permutation), in output order; pass them to ``MVCNet.forward``."""
        return [
            view.channel_map(n_chans) if isinstance(view, _View) else None for view in self.views
        ]

    def __repr__(self) -> str:
        views = ", ".join(repr(v) for v in self.views)
        return (
            f"ViewPipeline(views=[{views}], sfreq={self.sfreq}, n_chans={len(self.ch_names)}, "
            f"seed={self.seed})"
        )
