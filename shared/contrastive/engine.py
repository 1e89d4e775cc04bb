"""Training loop on Lightning Fabric: devices, DDP, AMP, checkpoints and exact resume.

The :class:`Engine` runs a plain PyTorch optimisation loop whose per-batch maths is supplied by
the caller as a ``step(model, batch)`` function. Fabric takes care of devices, distributed data
parallel training (DDP, also under ``torchrun`` or SLURM) and automatic mixed precision (CUDA
only); the engine adds what a research run needs on top: epoch-averaged metrics, a
``metrics.csv`` table (the per-epoch training log), atomic checkpoints and bit-exact resume.
Where Fabric has a utility the engine uses it: :func:`lightning.fabric.seed_everything` for
seeding, :meth:`Fabric.save <lightning.fabric.Fabric.save>` and
:meth:`Fabric.load <lightning.fabric.Fabric.load>` (``weights_only=True``) for checkpoints, which
are written to the temporary file of :func:`medcl.util.atomic.atomic_path` and renamed into
place. The engine reads no Lightning environment variable.

Resume is exact because randomness never depends on history: at the start of every epoch all
random number generators (Python, NumPy, PyTorch CPU and CUDA) are reseeded from
``(seed, epoch, rank)``, and the data order from ``(seed, epoch)``. An interrupted run resumed
from its last checkpoint therefore produces the same weights as an uninterrupted one.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from torch.utils.data import DataLoader, TensorDataset
>>> x, y = torch.randn(64, 4), torch.randn(64, 1)
>>> loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
>>> model = nn.Linear(4, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> def step(model, batch):
...     xb, yb = batch
...     return nn.functional.mse_loss(model(xb), yb)
>>> engine = Engine(EngineConfig(max_epochs=2, accelerator="cpu", progress=False), run_dir=None)
>>> model = engine.fit(model, opt, loader, step)
>>> len(engine.history)
2
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from lightning.fabric import Fabric
from lightning.fabric import seed_everything as _fabric_seed_everything
from lightning.fabric.strategies import DataParallelStrategy, SingleDeviceStrategy
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from medcl.util.atomic import atomic_path
from medcl.util.clock import clock

__all__ = [
    "CHECKPOINT_DIR",
    "CHECKPOINT_NAME",
    "METRICS_NAME",
    "STEP_METRICS_NAME",
    "Engine",
    "EngineConfig",
    "resolve_precision",
    "seed_everything",
]

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_NAME = "last.pt"
METRICS_NAME = "metrics.csv"
STEP_METRICS_NAME = "metrics_steps.csv"

_MIXED_PRECISIONS = {"16-mixed", "bf16-mixed", "16", "bf16"}
_CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "global_step")
MAX_SEED = 2**32 - 1  # NumPy's (and so Lightning's) upper bound of a seed

StepOutput = torch.Tensor | Mapping[str, Any]
StepFn = Callable[[nn.Module, Any], StepOutput]
ValFn = Callable[[nn.Module], Mapping[str, float]]


@dataclass
class EngineConfig:
    """Settings of an :class:`Engine` run.

    Parameters
    ----------
    max_epochs : int
        Number of epochs of the whole run (a resumed run continues up to this number).
    accelerator : str
        ``"cpu"``, ``"cuda"`` (or ``"gpu"``) or ``"auto"``.
    devices : int or str
        Devices per node, with Fabric semantics (``"auto"``, ``N``).
    num_nodes : int
        Number of nodes; Fabric reads the ``torchrun`` / SLURM environment conventions.
    strategy : str
        Fabric strategy; ``"ddp"`` for multi-process training. Spawn-based strategies
        (``"ddp_spawn"``, ``"ddp_fork"``, ...) are not supported: use ``"ddp"`` or ``torchrun``.
    precision : str or None
        ``None`` resolves to ``"bf16-mixed"`` on CUDA with bf16 support, else ``"16-mixed"`` on
        CUDA and ``"32-true"`` elsewhere. ``"bf16-mixed"`` also runs on the CPU (autocast to
        bfloat16, when asked for: fast on CPUs with bfloat16 instructions); ``"16-mixed"``
        requested off CUDA falls back to ``"32-true"`` with a warning. See
        :func:`resolve_precision`.
    grad_clip_norm : float or None
        Clip the global gradient norm to this value (``None``: no clipping).
    seed : int
        Seed of every random stream of the run (``0 <= seed <= 2**32 - 1``).
    resume : bool
        Resume from ``<run_dir>/checkpoints/last.pt`` when it exists (start fresh otherwise).
    checkpoint_every : int
        Save the checkpoint every this many epochs; the last epoch is always saved.
        ``0`` saves at the end only.
    progress : bool
        Rank 0 only: a rich progress bar on a terminal; otherwise (output to a file) one
        flushed line per epoch with its metrics, elapsed time and ETA.
    log_every_n_steps : int
        When ``> 0``, also record rank-0 step values every this many optimiser steps in
        ``<run_dir>/metrics_steps.csv``; ``0`` records epoch rows only (``metrics.csv``).
    """

    max_epochs: int = 10
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None
    grad_clip_norm: float | None = None
    seed: int = 0
    resume: bool = False
    checkpoint_every: int = 1
    progress: bool = True
    log_every_n_steps: int = 0

    def __post_init__(self) -> None:
        if self.max_epochs < 0:
            raise ValueError(f"max_epochs must be >= 0, got {self.max_epochs}")
        if self.num_nodes < 1:
            raise ValueError(f"num_nodes must be >= 1, got {self.num_nodes}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ValueError(f"grad_clip_norm must be > 0 or None, got {self.grad_clip_norm}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be in [0, 2**32 - 1], got {self.seed}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.log_every_n_steps < 0:
            raise ValueError(f"log_every_n_steps must be >= 0, got {self.log_every_n_steps}")


# --------------------------------------------------------------------------- randomness


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (CPU and all CUDA devices).

    A thin check around :func:`lightning.fabric.seed_everything` (quiet, ``workers=False``),
    which seeds the three generators with ``seed``. Lightning also records the seed in its own
    environment variables; the engine never reads them (its data order is seeded explicitly,
    see :meth:`Engine._reseed_epoch`).

    Parameters
    ----------
    seed : int
        Seed, ``0 <= seed <= 2**32 - 1``.

    Returns
    -------
    int
        The seed used.

    Raises
    ------
    ValueError
        If ``seed`` is outside ``[0, 2**32 - 1]``.
    """
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**32 - 1], got {seed}")
    return int(_fabric_seed_everything(seed, workers=False, verbose=False))


def _derive_seed(*entropy: int) -> int:
    """A 32-bit seed derived from a tuple of non-negative integers (NumPy ``SeedSequence``)."""
    state = np.random.SeedSequence([int(e) for e in entropy]).generate_state(1, dtype=np.uint32)
    return int(state[0])


def _get_rng_state() -> dict[str, Any]:
    """Snapshot of every global RNG, as tensors and primitives (``weights_only`` loadable)."""
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    cuda: list[torch.Tensor] = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    return {
        "python": [int(py_version), [int(v) for v in py_internal], py_gauss],
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": cuda,
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore a snapshot made by :func:`_get_rng_state`."""
    py_version, py_internal, py_gauss = state["python"]
    random.setstate((int(py_version), tuple(int(v) for v in py_internal), py_gauss))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (npy["name"], keys, int(npy["pos"]), int(npy["has_gauss"]), float(npy["cached_gaussian"]))
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------- precision


def _targets_cuda(accelerator: str) -> bool:
    acc = str(accelerator).lower()
    if acc in ("cuda", "gpu"):
        return True
    if acc == "auto":
        return torch.cuda.is_available()
    return False


def resolve_precision(precision: str | None, accelerator: str) -> str:
    """Resolve the Fabric precision for an accelerator, keeping AMP to CUDA.

    Parameters
    ----------
    precision : str or None
        Requested precision (Fabric names such as ``"32-true"``, ``"16-mixed"``,
        ``"bf16-mixed"``), or ``None`` for the best default.
    accelerator : str
        ``"cpu"``, ``"cuda"``/``"gpu"``, ``"auto"`` (CUDA when available) or another Fabric name.

    Returns
    -------
    str
        ``None`` resolves to ``"bf16-mixed"`` on CUDA devices with bf16 support, else
        ``"16-mixed"`` on CUDA and ``"32-true"`` elsewhere. ``"bf16-mixed"`` asked for on the
        CPU stays (Fabric autocasts the CPU to bfloat16; it is never the CPU's default, since
        CPUs without bfloat16 instructions run it slower than float32); ``"16-mixed"`` off CUDA
        falls back to ``"32-true"`` with a :class:`UserWarning`; ``"bf16-mixed"`` on a CUDA
        device without bf16 support falls back to ``"16-mixed"`` with a warning. Any other value
        is passed through unchanged.
    """
    on_cuda = _targets_cuda(accelerator)
    bf16_ok = on_cuda and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if precision is None:
        if not on_cuda:
            return "32-true"
        return "bf16-mixed" if bf16_ok else "16-mixed"
    precision = str(precision)
    if precision in _MIXED_PRECISIONS:
        if not on_cuda and precision.startswith("bf16") and str(accelerator).lower() in (
                "cpu", "auto"):
            return "bf16-mixed"
        if not on_cuda:
            warnings.warn(
                f"precision={precision!r} needs CUDA (off CUDA only bf16-mixed runs); "
                f"accelerator={accelerator!r} falls back to '32-true'.",
                UserWarning,
                stacklevel=2,
            )
            return "32-true"
        if precision.startswith("bf16") and torch.cuda.is_available() and not bf16_ok:
            warnings.warn(
                "this CUDA device has no bf16 support; falling back to '16-mixed'.",
                UserWarning,
                stacklevel=2,
            )
            return "16-mixed"
        return precision if precision.endswith("-mixed") else f"{precision}-mixed"
    return precision


# --------------------------------------------------------------------------- files


def _csv_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """``epoch``, ``step``, the other keys in order of first appearance, then ``seconds``."""
    head, tail = ["epoch", "step"], ["seconds"]
    middle: list[str] = []
    for row in rows:
        for key in row:
            if key not in head and key not in tail and key not in middle:
                middle.append(key)
    return head + middle + tail


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as CSV atomically (flushed to disk before the rename)."""
    columns = _csv_columns(rows)
    if rows and all("seconds" not in row for row in rows):
        columns.remove("seconds")
    with atomic_path(path, fsync=True) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)


# --------------------------------------------------------------------------- step outputs


def _scalar(name: str, value: Any) -> torch.Tensor | float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"step() must return scalar values; {name!r} has shape {tuple(value.shape)}"
            )
        return value.detach().float().reshape(())
    if isinstance(value, int | float | np.floating | np.integer):
        return float(value)
    raise TypeError(f"step() returned {name!r} of type {type(value).__name__}; expected a scalar")


def _split_step_output(out: StepOutput) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
    """The loss to back-propagate and the detached scalars to log (``loss`` included)."""
    if isinstance(out, torch.Tensor):
        loss, extras = out, {}
    elif isinstance(out, Mapping):
        if "loss" not in out:
            raise KeyError(f"step() returned a dict without a 'loss' key (keys: {sorted(out)})")
        loss, extras = out["loss"], {k: v for k, v in out.items() if k != "loss"}
    else:
        raise TypeError(
            "step() must return a loss tensor or a dict with a 'loss' key, "
            f"got {type(out).__name__}"
        )
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError("step() must return the loss as a scalar tensor")
    logs = {"loss": _scalar("loss", loss)}
    logs.update({str(k): _scalar(str(k), v) for k, v in extras.items()})
    return loss.reshape(()), logs


# --------------------------------------------------------------------------- engine


class Engine:
    """A Fabric training loop with epoch metrics, atomic checkpoints and exact resume.

    Parameters
    ----------
    config : EngineConfig or None
        Run settings (defaults when ``None``).
    run_dir : str, Path or None
        Folder receiving ``metrics.csv`` (the training log: one row per epoch),
        ``metrics_steps.csv`` (when ``log_every_n_steps > 0``) and ``checkpoints/last.pt``.
        ``None`` writes nothing (and cannot resume).

    Attributes
    ----------
    fabric : lightning.fabric.Fabric
        The Fabric instance (launched: processes and process group exist once built).
    precision : str
        The resolved precision.
    history : list of dict
        The epoch rows: ``epoch`` (1-based count of completed epochs), ``step`` (global optimiser
        steps), the epoch means of the values returned by ``step`` (all-reduced over ranks),
        ``lr`` (first parameter group, during the epoch), the values of ``val_fn`` (rank 0), and
        ``seconds``.
    step_history : list of dict
        The step rows (``log_every_n_steps > 0``).
    global_step : int
        Optimiser steps taken so far (resumed runs included).

    Notes
    -----
    Spawn-based strategies are not supported. With ``strategy="ddp"`` and ``devices > 1`` run
    outside ``torchrun``, Fabric re-executes the current command once per extra device, so build
    the engine before any side effect that must happen once.
    """

    def __init__(self, config: EngineConfig | None = None, run_dir: str | Path | None = None):
        self.config = config if config is not None else EngineConfig()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.config.resume and self.run_dir is None:
            raise ValueError("resume=True needs a run_dir holding checkpoints/last.pt")
        self.precision = resolve_precision(self.config.precision, self.config.accelerator)
        self.fabric = Fabric(
            accelerator=self.config.accelerator,
            devices=self.config.devices,
            num_nodes=self.config.num_nodes,
            strategy=self.config.strategy,
            precision=self.precision,  # type: ignore[arg-type]
        )
        self._launch()
        self.history: list[dict[str, Any]] = []
        self.step_history: list[dict[str, Any]] = []
        self.global_step = 0
        self._sampler_warned = False
        self.seed_everything(self.config.seed)

    # ---------------------------------------------------------------- public helpers

    @staticmethod
    def seed_everything(seed: int) -> int:
        """Seed Python, NumPy and PyTorch (CPU and CUDA); see :func:`seed_everything`."""
        return seed_everything(seed)

    @property
    def checkpoint_path(self) -> Path | None:
        """``<run_dir>/checkpoints/last.pt`` (``None`` without a run folder)."""
        if self.run_dir is None:
            return None
        return self.run_dir / CHECKPOINT_DIR / CHECKPOINT_NAME

    @property
    def metrics_path(self) -> Path | None:
        """``<run_dir>/metrics.csv`` (``None`` without a run folder)."""
        return None if self.run_dir is None else self.run_dir / METRICS_NAME

    # ---------------------------------------------------------------- training

    def fit(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_loader: DataLoader,
        step: StepFn,
        *,
        val_fn: ValFn | None = None,
        scheduler: Any | None = None,
        extra_state: dict[str, Any] | None = None,
        scheduler_interval: str = "epoch",
    ) -> nn.Module:
        """Train ``model`` for ``config.max_epochs`` epochs (resuming when asked).

        Parameters
        ----------
        model : nn.Module
            The network; moved to the device in place and returned unwrapped.
        optimizer : torch.optim.Optimizer
            Optimiser over ``model``'s parameters.
        train_loader : DataLoader
            Training batches. Under DDP its sampler is replaced by a ``DistributedSampler``.
            Batches arrive on the device.
        step : callable
            ``step(model, batch)`` returns the loss (scalar tensor) or a dict with key ``"loss"``
            plus other scalars to log. ``model`` is the Fabric-wrapped module: call it (its
            ``forward``) so that DDP synchronises gradients and AMP autocasts.
        val_fn : callable, optional
            ``val_fn(model) -> {name: float}`` run after every epoch on every rank with the
            unwrapped model in eval mode; rank 0's values are logged.
        scheduler : optional
            Learning-rate scheduler, stepped once per epoch (or per optimiser step, see
            ``scheduler_interval``); saved in checkpoints.
        extra_state : dict, optional
            More state to checkpoint and restore on resume: values with
            ``state_dict``/``load_state_dict`` (e.g. a loss module holding a queue) are restored
            in place; other values (tensors, primitives) are replaced in the dict.
        scheduler_interval : {"epoch", "step"}
            When to call ``scheduler.step()``.

        Returns
        -------
        nn.Module
            The trained, unwrapped model.
        """
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(
                f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}"
            )
        with contextlib.suppress(TypeError):
            if len(train_loader) == 0:
                raise ValueError("train_loader yields no batch (empty dataset or drop_last?)")
        cfg, fabric = self.config, self.fabric
        module = model
        wrapped_model, wrapped_opt = fabric.setup(model, optimizer)
        loader = fabric.setup_dataloaders(train_loader, use_distributed_sampler=True)

        self.history, self.step_history, self.global_step = [], [], 0
        start_epoch = 0
        if cfg.resume:
            start_epoch = self._resume(module, optimizer, scheduler, extra_state)
        elif self.checkpoint_path is not None and self.checkpoint_path.exists():
            log.info("resume=False: %s will be overwritten", self.checkpoint_path)

        show = bool(cfg.progress and fabric.is_global_zero and sys.stderr.isatty())
        progress = _make_progress(show)
        lines = bool(cfg.progress and fabric.is_global_zero and not show)
        started = time.perf_counter()
        with progress:
            task = progress.add_task("train", total=None, loss="")
            for iteration, epoch in enumerate(range(start_epoch, cfg.max_epochs)):
                t0 = time.perf_counter()
                self._reseed_epoch(epoch, loader, iteration)
                lr = float(optimizer.param_groups[0]["lr"]) if optimizer.param_groups else math.nan
                means = self._train_epoch(
                    wrapped_model,
                    wrapped_opt,
                    loader,
                    step,
                    epoch,
                    iteration,
                    scheduler,
                    scheduler_interval,
                    progress,
                    task,
                )
                if scheduler is not None and scheduler_interval == "epoch":
                    scheduler.step()
                val = self._validate(module, val_fn)
                row: dict[str, Any] = {"epoch": epoch + 1, "step": self.global_step}
                row.update(means)
                row["lr"] = lr
                for key, value in val.items():
                    row[f"val_{key}" if key in row else key] = value
                row["seconds"] = round(time.perf_counter() - t0, 4)
                self.history.append(row)
                if fabric.is_global_zero:
                    summary = f"epoch {epoch + 1}/{cfg.max_epochs} " + " ".join(
                        f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"
                    )
                    log.info(summary)
                    if show:
                        progress.console.print(summary, highlight=False)
                    elif lines:  # a log file (nohup, SLURM): one flushed line per epoch
                        elapsed = time.perf_counter() - started
                        eta = elapsed / (iteration + 1) * (cfg.max_epochs - epoch - 1)
                        print(f"{summary} (elapsed {clock(elapsed)}, ETA {clock(eta)})",
                              file=sys.stderr, flush=True)
                self._write_metrics()
                last = epoch + 1 == cfg.max_epochs
                every = cfg.checkpoint_every
                if last or (every > 0 and (epoch + 1) % every == 0):
                    self._save_checkpoint(module, optimizer, scheduler, extra_state, epoch + 1)
        return module

    def _train_epoch(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loader: Any,
        step: StepFn,
        epoch: int,
        iteration: int,
        scheduler: Any,
        scheduler_interval: str,
        progress: Any,
        task: Any,
    ) -> dict[str, float]:
        cfg, fabric = self.config, self.fabric
        model.train()
        sums: dict[str, torch.Tensor | float] = {}
        counts: dict[str, int] = {}
        try:
            total: int | None = len(loader)
        except TypeError:
            total = None
        progress.reset(task, total=total, description=f"epoch {epoch + 1}/{cfg.max_epochs}")
        for batch_idx, batch in enumerate(loader):
            optimizer.zero_grad(set_to_none=True)
            loss, logs = _split_step_output(step(model, batch))
            fabric.backward(loss)
            if cfg.grad_clip_norm is not None:
                fabric.clip_gradients(model, optimizer, max_norm=cfg.grad_clip_norm)
            optimizer.step()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            self.global_step += 1
            for key, value in logs.items():
                sums[key] = sums[key] + value if key in sums else value
                counts[key] = counts.get(key, 0) + 1
            n = cfg.log_every_n_steps
            if n > 0 and self.global_step % n == 0:
                self.step_history.append(
                    {"epoch": epoch + 1, "step": self.global_step}
                    | {k: float(v) for k, v in logs.items()}
                )
            if progress.live.is_started and (batch_idx % 10 == 0 or batch_idx + 1 == total):
                progress.update(
                    task, completed=batch_idx + 1, loss=f"loss {float(logs['loss']):.4g}"
                )
            elif progress.live.is_started:
                progress.update(task, completed=batch_idx + 1)
        self._check_sampler_epoch(loader, iteration)
        keys = sorted(sums)
        if not keys:
            return {}
        means = torch.stack(
            [
                torch.as_tensor(sums[k], dtype=torch.float32, device=fabric.device) / counts[k]
                for k in keys
            ]
        )
        if fabric.world_size > 1:
            means = fabric.all_reduce(means, reduce_op="mean")
        values = [float(v) for v in means.cpu().tolist()]
        if not math.isfinite(values[keys.index("loss")]):
            log.warning("epoch %d: the mean loss is not finite", epoch + 1)
        return dict(zip(keys, values, strict=True))

    def _validate(self, module: nn.Module, val_fn: ValFn | None) -> dict[str, float]:
        if val_fn is None:
            return {}
        was_training = module.training
        module.eval()
        try:
            out = val_fn(module) or {}
        finally:
            module.train(was_training)
        values = {str(k): float(v) for k, v in dict(out).items()}
        if self.fabric.world_size > 1:
            values = self.fabric.broadcast(values, src=0)
        return values

    # ---------------------------------------------------------------- randomness per epoch

    def _reseed_epoch(self, epoch: int, loader: Any, iteration: int) -> None:
        """Reseed every RNG from ``(seed, epoch, rank)`` and the data order from ``(seed, epoch)``.

        Fabric's loader wrapper sets a ``DistributedSampler``'s epoch to the number of times it
        was iterated (``iteration`` here), so its seed is offset to give ``seed + epoch`` equal to
        the data seed of the absolute epoch.
        """
        seed, rank = self.config.seed, self.fabric.global_rank
        seed_everything(_derive_seed(seed, epoch, 0, rank))
        data_seed = _derive_seed(seed, epoch, 1)
        for sampler in _samplers(loader):
            if isinstance(sampler, DistributedSampler):
                sampler.seed = data_seed - iteration
            generator = getattr(sampler, "generator", None)
            if isinstance(generator, torch.Generator):
                generator.manual_seed(data_seed)
        generator = getattr(loader, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(_derive_seed(seed, epoch, 2, rank))

    def _check_sampler_epoch(self, loader: Any, iteration: int) -> None:
        for sampler in _samplers(loader):
            if (
                isinstance(sampler, DistributedSampler)
                and sampler.epoch != iteration
                and not self._sampler_warned
            ):
                self._sampler_warned = True
                warnings.warn(
                    "the DistributedSampler epoch does not follow Fabric's iteration count; "
                    "data order may differ between a resumed and an uninterrupted run.",
                    RuntimeWarning,
                    stacklevel=2,
                )

    # ---------------------------------------------------------------- files

    def _write_metrics(self) -> None:
        if self.run_dir is None or not self.fabric.is_global_zero:
            return
        _write_csv(self.run_dir / METRICS_NAME, self.history)
        if self.config.log_every_n_steps > 0:
            _write_csv(self.run_dir / STEP_METRICS_NAME, self.step_history)

    def _save_checkpoint(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        extra_state: dict[str, Any] | None,
        epoch: int,
    ) -> None:
        """Write ``last.pt`` with :meth:`Fabric.save` into an atomic temporary file.

        Every rank calls :meth:`Fabric.save` (it is collective); under the supported strategies
        (single device, DDP) only rank 0 writes, into the temporary file of
        :func:`~medcl.util.atomic.atomic_path`, which is flushed to disk and renamed onto
        ``last.pt`` before any rank goes on.
        """
        path = self.checkpoint_path
        if path is None:
            return
        fabric = self.fabric
        extra: dict[str, Any] = {}
        for key, value in (extra_state or {}).items():
            extra[key] = value.state_dict() if hasattr(value, "state_dict") else value
        # the module and the optimiser are turned into their state dicts by Fabric
        state = {
            "format": 1,
            "model": module,
            "optimizer": optimizer,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "extra": extra,
            "epoch": int(epoch),
            "global_step": int(self.global_step),
            "config": asdict(self.config),
            "precision": self.precision,
            "history": self.history,
            "step_history": self.step_history,
            "rng": _get_rng_state(),
            "versions": {"torch": str(torch.__version__), "lightning": lightning.__version__},
        }
        if fabric.is_global_zero:
            with atomic_path(path, fsync=True) as tmp:
                fabric.save(tmp, state)
        else:
            fabric.save(path, state)  # joins the collective save; rank 0 alone writes
        fabric.barrier()  # last.pt is in place on every rank's return

    def _resume(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        extra_state: dict[str, Any] | None,
    ) -> int:
        """Load ``last.pt`` into the run; returns the number of epochs already completed."""
        path = self.checkpoint_path
        assert path is not None
        if not path.exists():
            if self.fabric.is_global_zero:
                log.info("resume=True but %s does not exist: starting a fresh run", path)
            return 0
        try:
            # Fabric.load goes through torch.load with a map_location that keeps every tensor
            # on the CPU; weights_only=True refuses anything but tensors and primitives
            ckpt = self.fabric.load(path, weights_only=True)
        except Exception as err:
            raise RuntimeError(
                f"Could not load checkpoint {path}: {err}. Delete the file (or the run folder) "
                "or set resume=False to start a fresh run."
            ) from err
        if not isinstance(ckpt, dict) or any(key not in ckpt for key in _CHECKPOINT_KEYS):
            raise RuntimeError(
                f"Checkpoint {path} is not an engine checkpoint (expected keys "
                f"{list(_CHECKPOINT_KEYS)}). Delete it or set resume=False."
            )
        try:
            module.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None and ckpt.get("scheduler") is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            saved_extra = ckpt.get("extra") or {}
            for key, value in (extra_state or {}).items():
                if key not in saved_extra:
                    raise KeyError(f"extra_state entry {key!r} is missing from the checkpoint")
                if hasattr(value, "load_state_dict"):
                    value.load_state_dict(saved_extra[key])
                else:
                    extra_state[key] = saved_extra[key]  # type: ignore[index]
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            raise RuntimeError(
                f"Checkpoint {path} does not match this model/optimizer/scheduler: {err}"
            ) from err
        saved_seed = (ckpt.get("config") or {}).get("seed", self.config.seed)
        if saved_seed != self.config.seed:
            warnings.warn(
                f"resuming {path} (seed {saved_seed}) with seed {self.config.seed}: the run will "
                "not match an uninterrupted one.",
                UserWarning,
                stacklevel=3,
            )
        if ckpt.get("rng") is not None:
            _set_rng_state(ckpt["rng"])
        epoch = int(ckpt["epoch"])
        self.global_step = int(ckpt["global_step"])
        self.history = [dict(row) for row in ckpt.get("history") or [] if row["epoch"] <= epoch]
        self.step_history = [dict(row) for row in ckpt.get("step_history") or []]
        self._write_metrics()  # drops rows written after the checkpoint
        if self.fabric.is_global_zero:
            log.info("resumed %s at epoch %d (step %d)", path, epoch, self.global_step)
        return epoch

    # ---------------------------------------------------------------- launching

    def _launch(self) -> None:
        """Create the processes and the process group (:meth:`Fabric.launch`) when needed.

        Under ``torchrun`` or SLURM the processes exist and ``launch`` only joins the process
        group; with ``strategy="ddp"`` and ``devices > 1`` outside them Fabric starts one process
        per extra device. Under Lightning's own launcher (``fabric run``) Fabric has set up the
        process group when it was built and ``launch`` refuses to run (its documented
        ``RuntimeError``): the engine then goes on with that process group.
        """
        if isinstance(self.fabric.strategy, SingleDeviceStrategy | DataParallelStrategy):
            return
        try:
            self.fabric.launch()
        except TypeError as err:
            raise ValueError(
                f"strategy={self.config.strategy!r} spawns processes from a function, which the "
                "Engine does not support; use strategy='ddp' (optionally under torchrun)."
            ) from err
        except RuntimeError:
            dist = torch.distributed
            if dist.is_available() and dist.is_initialized():
                return  # `fabric run`: processes and process group exist already
            raise


def _samplers(loader: Any) -> list[Any]:
    """The sampler and the batch sampler's sampler of a (Fabric-wrapped) loader, deduplicated."""
    found: list[Any] = []
    candidates = [getattr(loader, "sampler", None)]
    candidates.append(getattr(getattr(loader, "batch_sampler", None), "sampler", None))
    for sampler in candidates:
        if sampler is not None and all(sampler is not s for s in found):
            found.append(sampler)
    return found



def _make_progress(show: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[loss]}"),
        console=Console(stderr=True),
        disable=not show,
    )
