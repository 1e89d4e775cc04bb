"""Forward+backward time and peak memory of the core's image losses (issue 13).

Three tables, one run:

1. every loss at B = 1024, d = 128 against our NT-Xent (ratio = loss time / NT-Xent time);
2. SwAV: ``medcl.contrastive.losses.SwAVLoss`` vs ``lightly.loss.SwaVLoss`` on the same prototype
   scores (2 x 1024 large + 6 x 1024 small crops, K = 3000); goal <= 1.0x lightly's time;
3. MV-InfoNCE and MV-DHEL vs a naive loop over view pairs (mean NT-Xent / DHEL over the
   M (M - 1) / 2 pairs, what one would write without the multi-view losses) at M = 2, 4, 8,
   N = 1024, chunk 1024; goal: memory O(M N) per chunk.

Times: all candidates of a table run round-robin in one process (the machine is shared, so
interleaving spreads the load over all of them), ``--repeats`` rounds, medians. Memory: each
configuration in a fresh subprocess, peak resident-set growth over the state before the loss
(``VmHWM`` reset through ``/proc/self/clear_refs`` just before), one forward+backward. CPU,
float32, ``torch.set_num_threads(--threads)``.

Run: ``.venv/bin/python benchmarks/bench_core_image.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

B, D = 1024, 128


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _reset_peak() -> bool:
    """Reset the process's peak resident set (VmHWM) to its current size (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- cases


def _case(name: str, b: int, m: int = 2):
    """Return ``(inputs, fn)``: leaf tensors and a callable giving the scalar loss."""
    import torch

    g = torch.Generator().manual_seed(0)

    def leaf(*shape):
        return torch.randn(*shape, generator=g).requires_grad_(True)

    from medcl.contrastive import losses as L

    if name == "ntxent":
        a, c = leaf(b, D), leaf(b, D)
        f = L.NTXentLoss(0.5)
        return [a, c], lambda: f(a, c)
    if name == "dcl":
        a, c = leaf(b, D), leaf(b, D)
        f = L.DCLLoss(0.1)
        return [a, c], lambda: f(a, c)
    if name == "supcon":
        a = leaf(b, 2, D)
        y = torch.randint(0, 10, (b,), generator=g)
        f = L.SupConLoss(0.1)
        return [a], lambda: f(a, y)
    if name == "cacr(M=2)":
        v = leaf(2, b, D)
        f = L.CACRLoss()
        return [v], lambda: f(v)
    if name == "cacr(M=5)":
        v = leaf(5, b, D)
        f = L.CACRLoss()
        return [v], lambda: f(v)
    if name == "amcl(3 heads)":
        z0, z1 = leaf(3, b, D), leaf(3, b, D)
        f = L.AMCLLoss(D, 3)
        return [z0, z1], lambda: f(z0, z1)["loss"]
    if name.startswith("mv-infonce") or name.startswith("mv-dhel"):
        v = leaf(m, b, D)
        cls = L.MVInfoNCELoss if name.startswith("mv-infonce") else L.MVDHELLoss
        f = cls(0.5, chunk_size=1024)
        return [v], lambda: f(v)
    if name.startswith("naive-infonce") or name.startswith("naive-dhel"):
        v = leaf(m, b, D)
        dhel = name.startswith("naive-dhel")
        from medcl.contrastive.functional import multiview_dhel

        nt = L.NTXentLoss(0.5)

        def naive():
            import torch.nn.functional as F

            z = F.normalize(v, dim=-1)
            pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
            if dhel:
                return sum(multiview_dhel(z[[i, j]], 0.5) for i, j in pairs) / len(pairs)
            return sum(nt(v[i], v[j]) for i, j in pairs) / len(pairs)

        return [v], naive
    def cosines(n):  # prototype scores as in training: cosines of projections and prototypes
        z = torch.nn.functional.normalize(torch.randn(n, D, generator=g), dim=1)
        c = torch.nn.functional.normalize(torch.randn(3000, D, generator=g), dim=1)
        return (z @ c.T).requires_grad_(True)

    if name == "swav":
        crops = [cosines(b) for _ in range(8)]
        f = L.SwAVLoss()
        return crops, lambda: f(crops[:2], crops[2:])
    if name == "swav-lightly":
        from lightly.loss import SwaVLoss

        crops = [cosines(b) for _ in range(8)]
        f = SwaVLoss()
        return crops, lambda: f(crops[:2], crops[2:]).sum()
    if name == "ft(ntxent)":
        a, c = leaf(b, D), leaf(b, D)
        f = L.FeatureTransformLoss(0.5)
        return [a, c], lambda: f(a, c)["loss"]
    if name == "ft(moco, K=4096)":
        a, c = leaf(b, D), leaf(b, D)
        queue = torch.randn(4096, D, generator=g)
        f = L.FeatureTransformLoss(0.07)
        return [a], lambda: f(a, c.detach(), queue)["loss"]
    if name == "hydra":
        a = leaf(b, D)
        y = torch.randint(0, 10, (b,), generator=g)
        f = L.HydraLoss(10, D)
        return [a], lambda: f(a, y)["loss"]
    raise KeyError(name)


def _step(inputs, fn) -> None:
    for x in inputs:
        x.grad = None
    fn().backward()


# --------------------------------------------------------------------------- measurements


def _memory_child(name: str, b: int, m: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    inputs, fn = _case(name, b, m)
    _reset_peak()
    base = _current_rss_mb()
    _step(inputs, fn)
    grown = max(_peak_rss_mb() - base, 0.0)
    print(json.dumps({"peak_mb": grown}))


def _memory(name: str, b: int, m: int, threads: int) -> float | None:
    cmd = [sys.executable, __file__, "--child", name, "--b", str(b), "--m", str(m),
           "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  [{name}] failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"]


def _times(names: list[tuple[str, int]], b: int, repeats: int) -> dict[str, float]:
    """Round-robin fwd+bwd timings (ms), medians; ``names``: (name, M)."""
    cases = {n: _case(n, b, m) for n, m in names}
    for inputs, fn in cases.values():  # warm-up
        _step(inputs, fn)
    samples: dict[str, list[float]] = {n: [] for n in cases}
    for _ in range(repeats):
        for n, (inputs, fn) in cases.items():
            t0 = time.perf_counter()
            _step(inputs, fn)
            samples[n].append(1000 * (time.perf_counter() - t0))
    return {n: statistics.median(v) for n, v in samples.items()}


def _table(title: str, rows: list[list[str]], header: list[str]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="B = 256, 3 repeats, M up to 4")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child")
    ap.add_argument("--b", type=int, default=B)
    ap.add_argument("--m", type=int, default=2)
    args = ap.parse_args()
    if args.child:
        _memory_child(args.child, args.b, args.m, args.threads)
        return
    import torch

    torch.set_num_threads(args.threads)
    b = 256 if args.quick else args.b
    repeats = 3 if args.quick else args.repeats
    views = [2, 4] if args.quick else [2, 4, 8]
    print(f"B = {b}, d = {D}, float32, CPU, {args.threads} thread(s), medians of {repeats}; "
          f"torch {torch.__version__}")

    losses = ["ntxent", "dcl", "supcon", "cacr(M=2)", "cacr(M=5)", "amcl(3 heads)",
              "mv-infonce(M=2)", "mv-dhel(M=2)", "ft(ntxent)", "ft(moco, K=4096)", "hydra"]
    t = _times([(n, 2) for n in losses], b, repeats)
    rows = []
    for n in losses:
        mem = _memory(n, b, 2, args.threads)
        rows.append([n, f"{t[n]:.1f}", f"{t[n] / t['ntxent']:.2f}x",
                     "-" if mem is None else f"{mem:.0f}"])
    _table("Every loss vs NT-Xent", rows, ["loss", "fwd+bwd ms", "vs NT-Xent", "peak MB"])

    t = _times([("swav", 2), ("swav-lightly", 2)], b, repeats)
    rows = [[n, f"{t[n]:.1f}", f"{t[n] / t['swav-lightly']:.2f}x",
             f"{_memory(n, b, 2, args.threads) or 0:.0f}"] for n in ("swav", "swav-lightly")]
    _table("SwAV vs lightly (2 + 6 crops, K = 3000; goal <= 1.0x)", rows,
           ["impl", "fwd+bwd ms", "vs lightly", "peak MB"])

    rows = []
    for m in views:
        names = [(f"mv-infonce(M={m})", m), (f"naive-infonce(M={m})", m),
                 (f"mv-dhel(M={m})", m), (f"naive-dhel(M={m})", m)]
        t = _times(names, b, max(3, repeats // 2))
        for n, mm in names:
            mem = _memory(n, b, mm, args.threads)
            rows.append([n, f"{t[n]:.1f}", "-" if mem is None else f"{mem:.0f}"])
    _table(f"Multi-view vs a naive loop over view pairs (N = {b}, chunk 1024)", rows,
           ["loss", "fwd+bwd ms", "peak MB"])


if __name__ == "__main__":
    main()
