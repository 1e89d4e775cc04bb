"""MVCNet on the CPU: predict latency, training time per epoch against EEGConformer, and accuracy
on simulated motor imagery, in one run.

(a) single-trial predict latency, 22 channels x 1000 samples, batch 1 (goal: median <= 5 ms);
(b) training time per epoch, MVCNet (three views, both branches) vs braindecode's EEGConformer
    on the same 144 trials, batch 64 (goal: ratio <= 1.0), and MVCNet's fast path
    (``fast=True``, the default: ``medcl.mvcnet._kernels``) vs its plain ``torch.nn`` modules
    (``fast=False``, same weights, same steps);
(c) accuracy on simulated data, 3 subjects, CO protocol: MVCNet, its CNN branch alone (CE only,
    no views), CSP+LDA and EEGNet — reported as measured;
(p) with ``--profile``: where an MVCNet step's time goes (forward / backward of each part on one
    stacked batch of 64 trials and 3 views, medians) and the floating-point operations of one
    step of each model (``torch.utils.flop_counter``) with the rate each achieves: the ratio in
    (b) cannot fall below the FLOP ratio times the rate ratio without changing the maths.

(b) runs in float32 and under bfloat16 autocast (``--precisions``; both models at each),
on the CPU or, with ``--device cuda``, on a GPU.

Run: ``.venv/bin/python benchmarks/bench_mvcnet.py [--epochs 30] [--seeds 1,2,3]``. On a shared
machine prefix ``OMP_NUM_THREADS=1``; (b) also prints the ratio of process CPU times, which the
load of other processes disturbs less than wall-clock times.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def latency(model, n_chans=22, n_times=1000, repeats=200) -> float:
    x = torch.randn(1, n_chans, n_times)
    model.eval()
    with torch.no_grad():
        for _ in range(20):
            model.predict_logits(x, infer="cnn")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.predict_logits(x, infer="cnn")
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def adam(model):
    """The optimiser both models train with here: Adam 1e-3, the fused CPU kernel (what
    ``train_mvcnet`` uses on the CPU)."""
    return torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_seconds(step, opt, batches, precision: str = "32") -> tuple[float, float]:
    """(wall, process CPU) seconds of one epoch: zero_grad, loss, backward, Adam step per batch;
    ``precision`` ``"bf16"``: the forward pass under ``torch.autocast`` (bfloat16), as the
    engine's ``bf16-mixed``. On CUDA the clock stops when the device is done."""
    device = batches[0][0].device
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for x, y in batches:
        opt.zero_grad()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = step(x, y)
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def _forward_backward_ms(fn, inputs, repeats: int) -> tuple[float, float]:
    """(forward, backward) milliseconds of ``fn(*inputs)`` (medians; backward of a random
    linear function of the output, into the parameters and any input that requires grad)."""
    fwd = _median_ms(lambda: fn(*inputs), repeats)
    out = fn(*inputs)
    grad = torch.randn_like(out)

    def both():
        fn(*inputs).backward(grad)

    return fwd, max(_median_ms(both, repeats) - fwd, 0.0)


def step_flops(step, x, y) -> float:
    """Floating-point operations (G) of one training step ``step(x, y).backward()``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step(x, y).backward()
    return counter.get_total_flops() / 1e9


def profile(model, views, objective, channel_maps, batch, runs, repeats) -> None:
    """(p): where the time of one MVCNet training step goes, part by part, on the CPU."""
    from medcl.mvcnet import _kernels

    x, y = batch
    pairs = views(x, y)
    xs = torch.cat([x] + [v for v, _ in pairs])
    ys = torch.cat([y] + [t for _, t in pairs])
    n_views = len(pairs)
    maps = _kernels.checked_maps(xs, channel_maps)
    model.train()
    with torch.no_grad():
        tokens = _kernels.encode(model.encoder, xs[..., : model.d_model], maps)
        feats = model.cnn_features(xs)
    flat = tokens.flatten(1).requires_grad_()
    feats = feats.requires_grad_()
    tokens = tokens.requires_grad_()
    parts = {
        f"views ({n_views}, forward only)": (lambda: views(x, y)[0][0], (), False),
        "CNN branch (IFNet stem)": (model.cnn_features, (xs,), True),
        "Transformer encoder": (
            lambda t: _kernels.encode(model.encoder, t, maps), (xs[..., : model.d_model],), True),
        "  in-projection (shared by linear views)": (
            lambda t: _kernels.autocast_apply(_kernels.SharedInProjection,
                t, model.encoder.layers[0].self_attn.in_proj_weight,
                model.encoder.layers[0].self_attn.in_proj_bias, maps)
            if maps else torch.nn.functional.linear(
                t, model.encoder.layers[0].self_attn.in_proj_weight,
                model.encoder.layers[0].self_attn.in_proj_bias),
            (xs[..., : model.d_model],), True),
        "  feed-forward (linear1, ReLU, linear2)": (
            lambda t: model.encoder.layers[0].linear2(
                model.encoder.layers[0].dropout(
                    torch.relu(model.encoder.layers[0].linear1(t)))), (tokens,), True),
        "projector (C*T -> hidden -> F)": (model.projector, (flat,), True),
        "classifier + losses (CE, CVC, CMC)": (
            lambda f: objective({"cnn": f, "proj": torch.tanh(f),
                                 "logits": model.classifier(f)}, ys, n_views)["loss"],
            (feats,), True),
    }
    rows = []
    for name, (fn, inputs, has_backward) in parts.items():
        if has_backward:
            rows.append((name, *_forward_backward_ms(fn, inputs, repeats)))
        else:
            rows.append((name, _median_ms(fn, repeats), 0.0))
    opt = runs["MVCNet"][1]
    for p in model.parameters():
        p.grad = torch.zeros_like(p) if p.grad is None else p.grad
    rows.append(("Adam update (fused)", _median_ms(opt.step, repeats), 0.0))
    step_fn = runs["MVCNet"][0]
    whole = _median_ms(lambda: step_fn(x, y).backward(), repeats)
    top = [r for r in rows if not r[0].startswith("  ")]
    print(f"\n(p) one MVCNet step, batch {len(x)} + {n_views} views stacked ({len(xs)} rows), "
          f"medians of {repeats}; whole forward + backward {whole:.0f} ms\n")
    print("| part | forward ms | backward ms | share of the parts |\n|---|---|---|---|")
    total = sum(f + b for _, f, b in top)
    for name, f, b in rows:
        print(f"| {name} | {f:.0f} | {b:.0f} | {100 * (f + b) / total:.0f}% |")
    flops, secs = {}, {}
    for name in ("MVCNet", "EEGConformer"):
        step_fn = runs[name][0]
        flops[name] = step_flops(step_fn, x, y)
        secs[name] = _median_ms(lambda s=step_fn: s(x, y).backward(), repeats) / 1e3
    print("\n| model | GFLOP per step (forward + backward) | s per step | GFLOP/s |")
    print("|---|---|---|---|")
    for name in flops:
        print(f"| {name} | {flops[name]:.1f} | {secs[name]:.2f} | {flops[name] / secs[name]:.1f} |")
    print(f"FLOP ratio MVCNet / EEGConformer {flops['MVCNet'] / flops['EEGConformer']:.1f}; "
          f"time ratio {secs['MVCNet'] / secs['EEGConformer']:.2f}")


def cuda_profile(runs, batches) -> None:
    """(p) on CUDA: per model, GPU kernels launched per step, GPU busy time per step and wall
    time per step (bf16 autocast, 3 epochs under ``torch.profiler``), then MVCNet's heaviest
    operators. Kernels x launch cost against the wall time tells whether arithmetic or
    per-kernel overhead sets the pace."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    steps = 3 * len(batches)
    print("\n(p) on CUDA, bf16 autocast, 3 epochs profiled\n")
    print("| model | GPU kernels per step | GPU busy ms per step | wall ms per step |")
    print("|---|---|---|---|")
    tables = {}
    for name in ("MVCNet", "EEGConformer"):
        step, opt = runs[name]
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            wall = sum(epoch_seconds(step, opt, batches, "bf16")[0] for _ in range(3))
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        busy = sum(getattr(e, "device_time", None) or getattr(e, "cuda_time", 0.0)
                   for e in kernels) / 1e3  # microseconds -> ms
        print(f"| {name} | {len(kernels) / steps:.0f} | {busy / steps:.1f} | "
              f"{1e3 * wall / steps:.1f} |")
        tables[name] = prof.key_averages().table(sort_by="self_device_time_total", row_limit=12)
    print("\nMVCNet's operators by GPU time:\n")
    print(tables["MVCNet"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--trans-hidden", type=int, default=None,
                        help="projector width (default: 4 x the feature size, 2048 here)")
    parser.add_argument("--skip-accuracy", action="store_true", help="only (a) and (b)")
    parser.add_argument("--profile", action="store_true", help="print (p), the profile table")
    parser.add_argument("--repeats", type=int, default=3,
                        help="for (b): epochs timed per model, alternating; medians reported")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="for (c): 64 trials per subject make one batch of 64 a single step")
    parser.add_argument("--device", default="cpu",
                        help="for (b): cpu or cuda (the same models and steps on the GPU)")
    parser.add_argument("--precisions", default="32,bf16",
                        help="for (b): 32 (float32) and/or bf16 (autocast bfloat16, the "
                        "engine's bf16-mixed); both models run at each")
    args = parser.parse_args()
    from braindecode.models import EEGConformer

    from medcl.mvcnet.config import MVCNetConfig
    from medcl.mvcnet.harness import load_data, run_protocol, summarise
    from medcl.mvcnet.simulate import MONTAGE_22
    from medcl.mvcnet.train import MVCNetObjective, build_model, multiview_step
    from medcl.mvcnet.views import ViewPipeline

    torch.manual_seed(0)
    cfg = MVCNetConfig(trans_hidden=args.trans_hidden)
    model = build_model(cfg, 22, 1000, 2, sfreq=250.0)
    plain = copy.deepcopy(model)  # same weights, plain torch.nn path
    plain.fast = False
    print(f"(a) predict latency, batch 1, 22 x 1000, CNN branch: {latency(model):.2f} ms median "
          "(goal <= 5 ms)")

    device = torch.device(args.device)
    model.to(device)
    plain.to(device)
    X = torch.randn(144, 22, 1000, device=device)
    y = torch.randint(0, 2, (144,), device=device)
    batches = [(X[i:i + 64], y[i:i + 64]) for i in range(0, 144, 64)]
    views = ViewPipeline(cfg.views, MONTAGE_22, 250.0, ["left", "right"])
    channel_maps = views.channel_maps(22)
    objective = MVCNetObjective()
    model.train()
    plain.train()

    def mvc_step(x, yy):  # train_mvcnet's step: the raw batch and its 3 views, both branches
        return multiview_step(model, views, objective, x, yy, channel_maps=channel_maps)["loss"]

    def plain_step(x, yy):  # the same step through the plain modules
        return multiview_step(plain, views, objective, x, yy, channel_maps=channel_maps)["loss"]

    conformer = EEGConformer(n_chans=22, n_outputs=2, n_times=1000, sfreq=250.0).to(device)

    def conf_step(x, yy):
        return torch.nn.functional.cross_entropy(conformer(x), yy)

    runs = {"MVCNet": (mvc_step, adam(model)), "EEGConformer": (conf_step, adam(conformer)),
            "MVCNet plain": (plain_step, adam(plain))}
    where = (f"on {torch.cuda.get_device_name(device)}" if device.type == "cuda"
             else f"on the CPU, {torch.get_num_threads()} thread(s)")
    for precision in args.precisions.split(","):
        for step, opt in runs.values():  # warm-up
            epoch_seconds(step, opt, batches[:1], precision)
        times = {name: [] for name in runs}
        for _ in range(args.repeats):  # alternate, so that both see the same machine load
            for name, (step, opt) in runs.items():
                times[name].append(epoch_seconds(step, opt, batches, precision))
        wall = {name: float(np.median([w for w, _ in t])) for name, t in times.items()}
        cpu = {name: float(np.median([c for _, c in t])) for name, t in times.items()}
        label = "float32" if precision == "32" else "bf16 autocast"
        print(f"(b) training epoch {where}, {label} (both models), 144 trials, batch 64, median "
              f"of {args.repeats}: MVCNet {wall['MVCNet']:.3f} s, EEGConformer "
              f"{wall['EEGConformer']:.3f} s, ratio {wall['MVCNet'] / wall['EEGConformer']:.2f} "
              f"(goal <= 1.0); process CPU time ratio {cpu['MVCNet'] / cpu['EEGConformer']:.2f}")
        fast, slow = "MVCNet", "MVCNet plain"
        print(f"    MVCNet fast path vs its plain torch.nn modules (fast=False, same weights): "
              f"plain {wall[slow]:.3f} s, ratio fast / plain {wall[fast] / wall[slow]:.2f}; "
              f"process CPU time ratio {cpu[fast] / cpu[slow]:.2f}")

    if args.profile and device.type == "cuda":
        cuda_profile(runs, batches)
    if args.profile and device.type == "cpu":
        profile(model, views, objective, channel_maps, batches[0], runs, args.repeats)
    if args.skip_accuracy:
        return
    from medcl.mvcnet.simulate import write_simulated

    with tempfile.TemporaryDirectory() as tmp:
        files = write_simulated(Path(tmp) / "sim", subjects=3, fmt="fif")
        cfg = MVCNetConfig(epochs=args.epochs, seeds=[int(s) for s in args.seeds.split(",")],
                           trans_hidden=args.trans_hidden, protocol="co",
                           batch_size=args.batch_size)
        data = load_data(cfg, files=files, events="left=769,right=770")
        table, _ = run_protocol(cfg, data, ["mvcnet", "mvcnet_cnn", "csp_lda", "eegnet"])
    print(f"\n(c) simulated, 3 subjects, CO protocol, {args.epochs} epochs, batch "
          f"{args.batch_size}, last-epoch accuracy (%), mean and std over seeds\n")
    summary = summarise(table)
    print("| model | mean | std | seeds |\n|---|---|---|---|")
    for r in summary.itertuples():
        print(f"| {r.model} | {r.mean:.2f} | {r.std:.2f} | {r.seeds} |")


if __name__ == "__main__":
    main()
