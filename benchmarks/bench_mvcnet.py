"""MVCNet on the CPU: predict latency, training time per epoch against EEGConformer, and accuracy
on simulated motor imagery, in one run.

(a) single-trial predict latency, 22 channels x 1000 samples, batch 1 (goal: median <= 5 ms);
(b) training time per epoch, MVCNet (three views, both branches) vs braindecode's EEGConformer
    on the same 144 trials, batch 64 (goal: ratio <= 1.0), and MVCNet's fast path
    (``fast=True``, the default: ``medcl.mvcnet._kernels``) vs its plain ``torch.nn`` modules
    (``fast=False``, same weights, same steps);
(c) accuracy on simulated data, 3 subjects, CO protocol: MVCNet, its CNN branch alone (CE only,
    no views), CSP+LDA and EEGNet — reported as measured.

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


def epoch_seconds(step, opt, batches) -> tuple[float, float]:
    """(wall, process CPU) seconds of one epoch: zero_grad, loss, backward, Adam step per batch."""
    wall, cpu = time.perf_counter(), time.process_time()
    for x, y in batches:
        opt.zero_grad()
        step(x, y).backward()
        opt.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--trans-hidden", type=int, default=2048)
    parser.add_argument("--skip-accuracy", action="store_true", help="only (a) and (b)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="for (b): epochs timed per model, alternating; medians reported")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="for (c): 64 trials per subject make one batch of 64 a single step")
    args = parser.parse_args()
    from braindecode.models import EEGConformer

    from medcl.mvcnet.config import MVCNetConfig
    from medcl.mvcnet.harness import load_data, run_protocol, summarise
    from medcl.mvcnet.simulate import MONTAGE_22
    from medcl.mvcnet.train import MVCNetObjective, build_model, multiview_step
    from medcl.mvcnet.views import ViewPipeline

    torch.manual_seed(0)
    cfg = MVCNetConfig(trans_hidden=args.trans_hidden)
    model = build_model(cfg, 22, 1000, 2)
    plain = copy.deepcopy(model)  # same weights, plain torch.nn path
    plain.fast = False
    print(f"(a) predict latency, batch 1, 22 x 1000, CNN branch: {latency(model):.2f} ms median "
          "(goal <= 5 ms)")

    X = torch.randn(144, 22, 1000)
    y = torch.randint(0, 2, (144,))
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

    conformer = EEGConformer(n_chans=22, n_outputs=2, n_times=1000, sfreq=250.0)

    def conf_step(x, yy):
        return torch.nn.functional.cross_entropy(conformer(x), yy)

    runs = {"MVCNet": (mvc_step, adam(model)), "EEGConformer": (conf_step, adam(conformer)),
            "MVCNet plain": (plain_step, adam(plain))}
    for step, opt in runs.values():  # warm-up
        epoch_seconds(step, opt, batches[:1])
    times = {name: [] for name in runs}
    for _ in range(args.repeats):  # alternate, so that both see the same machine load
        for name, (step, opt) in runs.items():
            times[name].append(epoch_seconds(step, opt, batches))
    wall = {name: float(np.median([w for w, _ in t])) for name, t in times.items()}
    cpu = {name: float(np.median([c for _, c in t])) for name, t in times.items()}
    print(f"(b) training epoch, 144 trials, batch 64, median of {args.repeats}: MVCNet "
          f"{wall['MVCNet']:.2f} s, EEGConformer {wall['EEGConformer']:.2f} s, ratio "
          f"{wall['MVCNet'] / wall['EEGConformer']:.2f} (goal <= 1.0); process CPU time ratio "
          f"{cpu['MVCNet'] / cpu['EEGConformer']:.2f}")
    fast, slow = "MVCNet", "MVCNet plain"
    print(f"    MVCNet fast path vs its plain torch.nn modules (fast=False, same weights): plain "
          f"{wall[slow]:.2f} s, ratio fast / plain {wall[fast] / wall[slow]:.2f}; process CPU "
          f"time ratio {cpu[fast] / cpu[slow]:.2f}")

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
