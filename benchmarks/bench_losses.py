"""Forward+backward time and peak memory of NT-Xent: medcl vs lightly vs pytorch-metric-learning.

Baselines: ``lightly.loss.NTXentLoss`` (the named baseline for the time ratio) and
``pytorch_metric_learning.losses.NTXentLoss`` wrapped in ``SelfSupervisedLoss``; also medcl's own
plain path (``info_nce(..., fast=False)``: dense masks, ``F.cross_entropy`` and autograd), so the
table shows what the fast kernel buys over plain PyTorch. Inputs are two
(B, 128) float32 views on the CPU. Every measurement runs in a fresh subprocess so that its peak
memory (growth of the process's maximum resident set over the state just before the loss) is its
own. Goals from the foundation issue: medcl time <= 0.6x lightly's at every B, and the chunked
kernel's peak memory at B = 16384 <= 0.25x the unchunked kernel's.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_losses.py [--quick]``).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

D = 128
PML_MEMORY_CAP_GB = 20  # pytorch-metric-learning needs > 24 GB at B = 1024: cap it, report OOM


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _plain_ntxent(out0, out1):
    """medcl's NT-Xent through the plain path of the kernel (``fast=False``)."""
    import torch
    import torch.nn.functional as F

    from medcl.contrastive.functional import LabelMasks, info_nce, pair_labels

    z = F.normalize(torch.cat([out0, out1]), dim=1)
    labels = pair_labels(out0.shape[0])
    masks = LabelMasks(labels, labels, torch.arange(z.shape[0]))
    return info_nce(z, z, masks, temperature=0.5, fast=False)


def _make(impl: str, chunk: int | None):
    if impl == "medcl":
        from medcl.contrastive.losses import NTXentLoss

        return NTXentLoss(temperature=0.5, chunk_size=chunk)
    if impl == "plain":
        return _plain_ntxent
    if impl == "lightly":
        from lightly.loss import NTXentLoss

        return NTXentLoss(temperature=0.5)
    if impl == "pml":
        from pytorch_metric_learning.losses import NTXentLoss, SelfSupervisedLoss

        return SelfSupervisedLoss(NTXentLoss(temperature=0.5))
    raise ValueError(impl)


def measure(impl: str, batch: int, chunk: int | None, repeats: int) -> dict:
    """One subprocess's work: warm up once, then time ``repeats`` forward+backward passes."""
    import torch

    torch.manual_seed(0)
    loss_fn = _make(impl, chunk)
    a = torch.randn(batch, D, requires_grad=True)
    b = torch.randn(batch, D, requires_grad=True)
    base = _current_rss_mb()
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        loss = loss_fn(a, b)
        loss.backward()
        if i:  # the first pass warms up allocator and kernels
            times.append(time.perf_counter() - start)
        a.grad = b.grad = None
    return {"seconds": min(times), "peak_mb": _rss_mb() - base, "loss": float(loss.detach())}


def run_one(impl: str, batch: int, chunk: int | None, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, str(batch), str(chunk or 0), str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": "out of memory" if "memory" in tail.lower() else tail[:80]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="B = 256 and 1024 only, no 16384")
    parser.add_argument("--chunk", type=int, default=1024, help="anchors per chunk at 16384")
    args = parser.parse_args()
    sizes = [256, 1024] if args.quick else [256, 1024, 4096]
    rows = []
    for batch in sizes:
        reps = 20 if batch <= 1024 else 3
        ours = run_one("medcl", batch, None, reps)
        plain = run_one("plain", batch, None, reps)
        ref = run_one("lightly", batch, None, reps)
        pml = run_one("pml", batch, None, 2) if batch <= 1024 else {"error": "not run"}
        rows.append((batch, ours, plain, ref, pml))
        print(f"B={batch}: medcl {ours} | plain {plain} | lightly {ref} | pml {pml}",
              file=sys.stderr)

    def fmt(r, key, f):
        return r["error"] if "error" in r else format(r[key], f)

    print("\nNT-Xent forward+backward, CPU float32, d = 128, two views of B items (2B rows)\n")
    def ratio(a, b):
        return a["seconds"] / b["seconds"] if "error" not in a and "error" not in b else math.nan

    print("| B | medcl s | lightly s | medcl/lightly | plain s | medcl/plain | pml s "
          "| medcl MB | plain MB | lightly MB | pml MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for batch, ours, plain, ref, pml in rows:
        print(f"| {batch} | {fmt(ours, 'seconds', '.4f')} | {fmt(ref, 'seconds', '.4f')} | "
              f"{ratio(ours, ref):.2f}x | {fmt(plain, 'seconds', '.4f')} | "
              f"{ratio(ours, plain):.2f}x | {fmt(pml, 'seconds', '.3f')} | "
              f"{fmt(ours, 'peak_mb', '.0f')} | {fmt(plain, 'peak_mb', '.0f')} | "
              f"{fmt(ref, 'peak_mb', '.0f')} | {fmt(pml, 'peak_mb', '.0f')} |")
    if args.quick:
        return
    big = 16384
    full = run_one("medcl", big, None, 1)
    chunked = run_one("medcl", big, args.chunk, 1)
    print(f"\nB = {big} (2B = {2 * big} rows): medcl unchunked vs chunk_size={args.chunk}\n")
    print("| kernel | s | peak MB | loss |")
    print("|---|---|---|---|")
    for name, r in (("unchunked", full), (f"chunk {args.chunk}", chunked)):
        print(f"| {name} | {fmt(r, 'seconds', '.2f')} | {fmt(r, 'peak_mb', '.0f')} | "
              f"{fmt(r, 'loss', '.6f')} |")
    if "error" not in full and "error" not in chunked:
        print(f"\nchunked / unchunked peak memory: {chunked['peak_mb'] / full['peak_mb']:.3f}x "
              "(goal <= 0.25x)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        impl, batch, chunk, repeats = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(
            sys.argv[5])
        if impl == "pml":
            cap = PML_MEMORY_CAP_GB * 2**30
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        print(json.dumps(measure(impl, batch, chunk or None, repeats)))
    else:
        main()
