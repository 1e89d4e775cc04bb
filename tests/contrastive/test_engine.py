"""Tests of :mod:`medcl.contrastive.engine`: exact resume, learning, clipping, checkpoints, DDP."""

from __future__ import annotations

import csv
import logging
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import free_port
from medcl.contrastive.engine import Engine, EngineConfig, resolve_precision, seed_everything

N_SAMPLES, N_FEATURES = 96, 8


def _config(**overrides) -> EngineConfig:
    base = {"accelerator": "cpu", "progress": False, "max_epochs": 4, "seed": 7}
    base.update(overrides)
    return EngineConfig(**base)


def _data(seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N_SAMPLES, N_FEATURES, generator=g)
    w = torch.randn(N_FEATURES, 1, generator=g)
    y = x @ w + 0.05 * torch.randn(N_SAMPLES, 1, generator=g)
    return TensorDataset(x, y, torch.arange(N_SAMPLES))


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(N_FEATURES, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 1))


def _noisy_step(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    """Regression step with randomness from torch, numpy and python inside the step."""
    x, y, _ = batch
    scale = 0.05 * float(np.random.rand()) + 0.01 * random.random()
    x = x + scale * torch.randn_like(x)
    pred = model(x)
    loss = nn.functional.mse_loss(pred, y)
    return {"loss": loss, "pred_mean": pred.mean()}


def _loader(generator: bool) -> DataLoader:
    kwargs = {"generator": torch.Generator().manual_seed(123)} if generator else {}
    return DataLoader(_data(), batch_size=16, shuffle=True, **kwargs)


def _train(run_dir: Path | None, model_seed: int, loader: DataLoader, **cfg) -> Engine:
    engine = Engine(_config(**cfg), run_dir)
    model = _model(model_seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    engine.fit(model, opt, loader, _noisy_step, scheduler=sched)
    engine.model = model  # type: ignore[attr-defined]
    return engine


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("generator", [False, True], ids=["global-rng", "loader-generator"])
def test_resume_gives_identical_weights(tmp_path: Path, generator: bool) -> None:
    full = _train(tmp_path / "full", 0, _loader(generator))
    _train(tmp_path / "resumed", 0, _loader(generator), max_epochs=2)
    assert len(_read_csv(tmp_path / "resumed" / "metrics.csv")) == 2
    # a fresh process would build a new model with another init: weights must come from last.pt
    resumed = _train(tmp_path / "resumed", 999, _loader(generator), resume=True)

    init = _model(0).state_dict()
    final_full, final_resumed = full.model.state_dict(), resumed.model.state_dict()
    for key in final_full:
        assert not torch.equal(final_full[key], init[key]), f"{key} never changed"
        assert torch.equal(final_full[key], final_resumed[key]), f"{key} differs after resume"

    rows = _read_csv(tmp_path / "resumed" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["step"]) for r in rows] == [6, 12, 18, 24]
    assert {"loss", "pred_mean", "lr", "seconds"} <= set(rows[0])
    full_rows = _read_csv(tmp_path / "full" / "metrics.csv")
    assert [r["loss"] for r in rows] == [r["loss"] for r in full_rows]
    assert resumed.history[-1]["loss"] == full.history[-1]["loss"]
    assert resumed.global_step == full.global_step == 24
    assert float(rows[1]["lr"]) == pytest.approx(1e-2 * 0.7)


def test_crash_between_checkpoints_resumes_exactly(tmp_path: Path) -> None:
    full = _train(tmp_path / "full", 0, _loader(False))

    def crashing_step(model, batch):
        if engine.global_step == 20:  # during epoch 4; the checkpoint holds epoch 2
            raise KeyboardInterrupt
        return _noisy_step(model, batch)

    engine = Engine(_config(checkpoint_every=2), tmp_path / "crash")
    model = _model(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    with pytest.raises(KeyboardInterrupt):
        engine.fit(model, opt, _loader(False), crashing_step, scheduler=sched)
    assert len(_read_csv(tmp_path / "crash" / "metrics.csv")) == 3  # one row past last.pt

    resumed = _train(tmp_path / "crash", 5, _loader(False), resume=True, checkpoint_every=2)
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    rows = _read_csv(tmp_path / "crash" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [r["loss"] for r in rows] == [
        r["loss"] for r in _read_csv(tmp_path / "full" / "metrics.csv")
    ]


def _fit_with_progress(max_epochs: int = 2) -> Engine:
    engine = Engine(_config(max_epochs=max_epochs, progress=True), None)
    model = _model(0)
    engine.fit(model, torch.optim.SGD(model.parameters(), lr=0.01), _loader(False), _noisy_step)
    return engine


def test_progress_bar_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    engine = _fit_with_progress()
    err = capsys.readouterr().err
    assert len(engine.history) == 2
    # the live bar: its description and the batch count of a finished epoch (6 batches)
    assert "epoch 2/2" in err and "6/6" in err
    assert "loss " in err  # the loss column of the bar
    # the per-epoch summary printed above the bar, with the epoch's values
    for row in engine.history:
        line = f"epoch {row['epoch']}/2 step={row['step']} loss={row['loss']:.4g}"
        assert line in err, line


def test_no_progress_bar_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    with caplog.at_level(logging.INFO, logger="medcl.contrastive.engine"):
        engine = _fit_with_progress()
    err = capsys.readouterr().err
    assert "6/6" not in err and "\x1b[" not in err  # no bar, no terminal control codes
    # one plain line per epoch, through logging
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    for line, row in zip(lines, engine.history, strict=True):
        assert line.startswith(f"epoch {row['epoch']}/2 step={row['step']} loss={row['loss']:.4g}")
    # and on standard error, for a log file, with elapsed time and ETA
    printed = [ln for ln in err.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(" (elapsed ")[0] for ln in printed] == lines
    assert printed[0].endswith(")") and "ETA 0:00:" in printed[0]


def test_different_seed_gives_different_weights(tmp_path: Path) -> None:
    a = _train(None, 0, _loader(False), max_epochs=1)
    b = _train(None, 0, _loader(False), max_epochs=1, seed=8)
    assert not torch.equal(a.model[0].weight, b.model[0].weight)


def test_resume_without_checkpoint_starts_fresh(tmp_path: Path) -> None:
    engine = _train(tmp_path, 0, _loader(False), max_epochs=1, resume=True)
    assert len(engine.history) == 1
    assert (tmp_path / "checkpoints" / "last.pt").is_file()


def test_resume_after_completion_trains_no_more(tmp_path: Path) -> None:
    _train(tmp_path, 0, _loader(False), max_epochs=2)
    calls: list[int] = []

    def step(model, batch):
        calls.append(1)
        return _noisy_step(model, batch)

    engine = Engine(_config(max_epochs=2, resume=True), tmp_path)
    model = _model(1)
    engine.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), _loader(False), step)
    assert calls == []
    assert engine.global_step == 12
    assert len(engine.history) == 2


def test_loss_decreases_and_metrics_are_logged(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Linear(N_FEATURES, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    engine = Engine(_config(max_epochs=6, log_every_n_steps=4), tmp_path)

    def step(model, batch):
        x, y, _ = batch
        return nn.functional.mse_loss(model(x), y)

    engine.fit(model, opt, _loader(False), step, val_fn=lambda m: {"loss": 0.5, "acc": 1.0})
    losses = [row["loss"] for row in engine.history]
    assert losses[-1] < 0.2 * losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert engine.history[0]["val_loss"] == 0.5  # a val key clashing with a train key
    assert engine.history[0]["acc"] == 1.0
    steps = _read_csv(tmp_path / "metrics_steps.csv")
    assert [int(r["step"]) for r in steps] == list(range(4, 37, 4))
    header = list(_read_csv(tmp_path / "metrics.csv")[0])
    assert header[:2] == ["epoch", "step"] and header[-1] == "seconds"


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_gradient_clipping_bounds_grad_norm(clip: float | None) -> None:
    torch.manual_seed(0)
    model = nn.Linear(N_FEATURES, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    norms: list[float] = []

    def record(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    opt.register_step_pre_hook(record)

    def step(model, batch):
        x, y, _ = batch
        return nn.functional.mse_loss(model(x), 10 * y)

    Engine(_config(max_epochs=1, grad_clip_norm=clip), None).fit(model, opt, _loader(False), step)
    assert len(norms) == 6
    if clip is None:
        assert min(norms) > 1e-2  # the control: unclipped gradients are far larger
    else:
        assert max(norms) <= clip * (1 + 1e-4)


def test_corrupt_checkpoint_raises_naming_file(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(RuntimeError, match="last.pt"):
        _train(tmp_path, 0, _loader(False), resume=True)


def test_mismatched_checkpoint_raises_naming_file(tmp_path: Path) -> None:
    _train(tmp_path, 0, _loader(False), max_epochs=1)
    engine = Engine(_config(resume=True), tmp_path)
    model = nn.Linear(N_FEATURES, 1)  # another architecture
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match=r"last\.pt"):
        engine.fit(model, opt, _loader(False), _noisy_step)


def test_checkpoint_contents_load_with_weights_only(tmp_path: Path) -> None:
    extra = {"counter": torch.tensor(3)}
    engine = Engine(_config(max_epochs=1), tmp_path)
    model = _model(0)
    engine.fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        _loader(False),
        _noisy_step,
        extra_state=extra,
    )
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 6
    assert ckpt["config"]["seed"] == 7 and ckpt["precision"] == "32-true"
    assert torch.equal(ckpt["extra"]["counter"], torch.tensor(3))
    assert {"python", "numpy", "torch"} <= set(ckpt["rng"])
    # the atomic temporary file (hidden, in the same folder) is gone: only last.pt is left
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "metrics.csv"]


def test_checkpoints_go_through_fabric_save_and_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning.fabric import Fabric

    saved: list[tuple[Path, bool]] = []
    loaded: list[dict] = []
    real_save, real_load = Fabric.save, Fabric.load

    def save(self, path, state, *args, **kwargs):
        assert isinstance(state["model"], nn.Module)  # Fabric turns it into its state dict
        real_save(self, path, state, *args, **kwargs)
        saved.append((Path(path), (tmp_path / "checkpoints" / "last.pt").exists()))

    def load(self, path, *args, **kwargs):
        loaded.append(dict(kwargs))
        return real_load(self, path, *args, **kwargs)

    monkeypatch.setattr(Fabric, "save", save)
    monkeypatch.setattr(Fabric, "load", load)
    _train(tmp_path, 0, _loader(False), max_epochs=1)
    [(written, final_existed)] = saved
    # Fabric wrote the hidden temporary file next to last.pt, which was then renamed
    assert written.parent == tmp_path / "checkpoints" and written.name.startswith(".last.tmp-")
    assert not final_existed and not written.exists()
    assert (tmp_path / "checkpoints" / "last.pt").is_file()
    _train(tmp_path, 0, _loader(False), max_epochs=2, resume=True)
    assert loaded == [{"weights_only": True}]


def test_resume_refuses_a_checkpoint_that_is_not_weights_only(tmp_path: Path) -> None:
    _train(tmp_path, 0, _loader(False), max_epochs=1)
    path = tmp_path / "checkpoints" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    ckpt["extra"] = {"code": _Unsafe()}  # an arbitrary object: only a full unpickle could load it
    torch.save(ckpt, path)
    with pytest.raises(RuntimeError, match=r"last\.pt"):
        _train(tmp_path, 0, _loader(False), max_epochs=2, resume=True)


class _Unsafe:
    pass


def test_resume_requires_run_dir() -> None:
    with pytest.raises(ValueError, match="run_dir"):
        Engine(_config(resume=True), None)


def test_step_must_return_loss() -> None:
    model = nn.Linear(N_FEATURES, 1)
    engine = Engine(_config(max_epochs=1), None)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(KeyError, match="loss"):
        engine.fit(model, opt, _loader(False), lambda m, b: {"other": m(b[0]).mean()})


def test_precision_resolution_on_cpu() -> None:
    assert resolve_precision(None, "cpu") == "32-true"
    assert resolve_precision("32-true", "cpu") == "32-true"
    for requested in ("16-mixed", "16"):
        with pytest.warns(UserWarning, match="32-true"):
            assert resolve_precision(requested, "cpu") == "32-true"
    assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"  # CPU autocast, on request
    assert resolve_precision("bf16", "cpu") == "bf16-mixed"
    assert Engine(_config(precision="bf16-mixed"), None).precision == "bf16-mixed"
    with pytest.warns(UserWarning):
        engine = Engine(_config(precision="16-mixed"), None)
    assert engine.precision == "32-true"
    assert type(engine.fabric.strategy.precision).__name__ == "Precision"  # full 32-bit plugin


def test_precision_resolution_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision(None, "cuda") == "bf16-mixed"
    assert resolve_precision(None, "auto") == "bf16-mixed"
    assert resolve_precision("16-mixed", "cuda") == "16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision(None, "cuda") == "16-mixed"
    with pytest.warns(UserWarning, match="bf16"):
        assert resolve_precision("bf16-mixed", "cuda") == "16-mixed"


def test_seed_must_fit_numpy() -> None:
    assert seed_everything(2**32 - 1) == 2**32 - 1
    for bad in (-1, 2**32):
        with pytest.raises(ValueError, match="seed"):
            seed_everything(bad)
        with pytest.raises(ValueError, match="seed"):
            _config(seed=bad)


def test_seeding_is_lightnings(monkeypatch: pytest.MonkeyPatch) -> None:
    import lightning.fabric

    from medcl.contrastive import engine as engine_module

    calls: list[tuple] = []
    real = engine_module._fabric_seed_everything
    assert real is lightning.fabric.seed_everything

    def spy(seed, *args, **kwargs):
        calls.append((seed, kwargs))
        return real(seed, *args, **kwargs)

    monkeypatch.setattr(engine_module, "_fabric_seed_everything", spy)
    assert seed_everything(11) == 11
    assert calls == [(11, {"workers": False, "verbose": False})]


def test_engine_reads_no_environment_variable() -> None:
    import inspect

    from medcl.contrastive import engine as engine_module

    source = inspect.getsource(engine_module)
    for needle in ("os.environ", "environ[", "environ.get", "getenv", "LT_CLI_USED", "PL_"):
        assert needle not in source, needle


@pytest.mark.parametrize("group_exists", [True, False])
def test_launch_under_lightnings_cli(monkeypatch: pytest.MonkeyPatch, group_exists: bool) -> None:
    """``fabric run`` builds the process group itself and Fabric then refuses ``launch()``."""
    from lightning.fabric import Fabric

    def refuse(self, *args, **kwargs):
        raise RuntimeError("This script was launched through the CLI")

    monkeypatch.setattr(Fabric, "launch", refuse)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: group_exists)
    if group_exists:  # the engine goes on with the existing process group
        assert Engine(_config(strategy="ddp", devices=1), None).fabric.world_size == 1
    else:  # a real launch failure is not hidden
        with pytest.raises(RuntimeError, match="CLI"):
            Engine(_config(strategy="ddp", devices=1), None)


def test_seed_everything_reproduces_all_streams() -> None:
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    seed_everything(5)
    first = draw()
    seed_everything(5)
    assert draw() == first
    assert Engine.seed_everything(6) == 6 and draw() != first


# --------------------------------------------------------------------------- two-process DDP



def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    # the torchrun environment conventions, so Fabric finds the processes already created
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        GROUP_RANK="0",
        LOCAL_WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    out_dir = Path(out)
    seen: list[int] = []

    def step(model, batch):
        seen.extend(batch[2].tolist())
        return _noisy_step(model, batch)

    def run(name: str, model_seed: int, **cfg) -> tuple[Engine, nn.Module]:
        engine = Engine(_config(strategy="ddp", devices=world, **cfg), out_dir / name)
        model = _model(model_seed)
        engine.fit(model, torch.optim.SGD(model.parameters(), lr=0.05), _loader(False), step)
        return engine, model

    # different init per rank on purpose: DDP must broadcast rank 0's weights
    engine, model = run("full", rank, max_epochs=3)
    full_seen = list(seen)
    run("resumed", rank, max_epochs=1)
    resumed_engine, resumed = run("resumed", 100 + rank, max_epochs=3, resume=True)
    torch.save(
        {
            "state": model.state_dict(),
            "resumed": resumed.state_dict(),
            "seen": full_seen,
            "history": engine.history,
            "world": engine.fabric.world_size,
        },
        out_dir / f"rank{rank}.pt",
    )
    # both ranks' results are on disk; leave without teardown, where gloo's threads can abort
    # the process (SIGABRT) after the work under test is done
    torch.distributed.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def test_two_process_ddp_ranks_agree(tmp_path: Path) -> None:
    world = 2
    mp.spawn(_ddp_worker, args=(world, free_port(), str(tmp_path)), nprocs=world, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    assert all(r["world"] == world for r in results)
    for key, value in results[0]["state"].items():
        assert torch.equal(value, results[1]["state"][key]), key
        for r in results:  # interrupted after one epoch and resumed: the same weights
            assert torch.equal(value, r["resumed"][key]), key
    # each rank sees half of every epoch, the two halves cover the data set
    per_epoch = N_SAMPLES // world
    assert len(results[0]["seen"]) == 3 * per_epoch
    for epoch in range(3):
        halves = [set(r["seen"][epoch * per_epoch : (epoch + 1) * per_epoch]) for r in results]
        assert halves[0].isdisjoint(halves[1])
        assert halves[0] | halves[1] == set(range(N_SAMPLES))
    # logged values are all-reduced: identical on both ranks; one file written by rank 0
    assert [h["loss"] for h in results[0]["history"]] == [h["loss"] for h in results[1]["history"]]
    rows = _read_csv(tmp_path / "full" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [int(r["step"]) for r in rows] == [3, 6, 9]
    resumed_rows = _read_csv(tmp_path / "resumed" / "metrics.csv")
    assert [r["loss"] for r in resumed_rows] == [r["loss"] for r in rows]
    assert (tmp_path / "full" / "checkpoints" / "last.pt").is_file()
