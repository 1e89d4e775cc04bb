"""DB-SAM on the CPU: per-slice time against vanilla SAM with the same encoder, decoder-only
re-prompt time, peak memory and floating-point work, in one run.

Random weights (speed does not depend on them), batch 1, one box prompt, inference
(``torch.no_grad``):

(a) per slice = ``embed`` + ``decode``: DB-SAM vs vanilla SAM, ``tiny`` at 256 and 1024, the
    ViT-B architecture at 1024 (``--skip-vit-b`` leaves it out); goal DB-SAM / SAM <= 1.3.
    The two models share the same SAM modules and are timed alternately; the median is kept.
    Wall-clock and process CPU time are both reported: on a shared machine the CPU time of a
    single-threaded run (``OMP_NUM_THREADS=1``) is the steadier measure of the work done.
(b) re-prompt = ``decode`` alone on a cached embedding (prompt encoder + mask decoder; the same
    modules for both models); goal <= 100 ms at 1024 and <= 20 ms at 256.
(c) peak memory: the peak resident set (``VmHWM``) of a fresh subprocess that builds one
    model and runs one slice; "peak" is the whole process (interpreter, torch, weights,
    activations), "slice" its growth during the slice (activations, workspace).
(d) GFLOP of ``embed`` counted by ``torch.utils.flop_counter`` on the meta device (no
    compute), a measure of the added work that the shared machine cannot disturb. The counter
    counts matrix products and convolutions, not ``grid_sample`` (the deformable attention's
    bilinear sampling: about 4 x 12 heads x 5 levels x 4 points x 64 channels x 2 per query,
    under 1 % of DB-SAM's count at ViT-B 1024²).
(e) one training step (forward + backward) of ``tiny`` at 256, batch 2, DB-SAM.
(f) the decoder kernels (``medcl.dbsam._kernels``, ``fast=True``) against segment-anything's
    own ``MaskDecoder`` (``fast=False``): ``decode`` time on cached embeddings, batch 1 and 4.
(g) DB-SAM on a laptop: per-slice time (embed + decode) and peak memory of vanilla LiteMedSAM
    (TinyViT, 256²), DB-SAM on LiteMedSAM (:class:`medcl.dbsam.litemedsam.DBSAMLite`) and
    vanilla SAM ViT-B (1024²), each at its native size, timed alternately (median), and the
    three ratios: LiteMedSAM / ViT-B (goal <= 0.1), DB-SAM-LiteMedSAM / LiteMedSAM (goal <=
    1.3), DB-SAM-LiteMedSAM / ViT-B; then a 3-D box prompt through the npz path
    (:func:`medcl.dbsam.npz.segment_npz`, the MedSAM-on-Laptop protocol) on a
    ``--volume-slices``-slice volume with vanilla LiteMedSAM, extrapolated to 100 slices (goal
    < 30 s on 2 cores). ``--laptop`` runs (g) alone.

Run: ``.venv/bin/python benchmarks/bench_dbsam.py [--skip-vit-b] [--laptop] [--out FILE.md]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

BASELINE = "sam"


def _peak_mb() -> float:
    """This process's peak resident set in MB: VmHWM where /proc exists, as ru_maxrss on Linux
    keeps the parent's peak across fork + exec and would credit it to a fresh child."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inputs(size: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=gen)
    box = torch.tensor([[0.2, 0.25, 0.6, 0.7]]) * size
    return images, box.repeat(batch, 1)


def _models(arch: str, size: int, ffn_ratio: float) -> dict:
    from medcl.dbsam.model import DBSAM, VanillaSAM, build_sam

    torch.manual_seed(0)
    sam = build_sam(arch, size)
    # Both wrappers share the SAM modules, so they compare the same weights.
    models = {BASELINE: VanillaSAM(sam), "dbsam": DBSAM(sam, ffn_ratio=ffn_ratio)}
    return {name: model.eval() for name, model in models.items()}


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def slice_times(models: dict, size: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, process CPU) seconds of embed + decode per model, timed alternately."""
    images, box = _inputs(size)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    with torch.no_grad():
        for model in models.values():  # warm-up: allocator, oneDNN kernel selection
            model.decode(model.embed(images), box)
        for _ in range(repeats):
            for name, model in models.items():
                times[name].append(_timed(lambda m=model: m.decode(m.embed(images), box)))
    return {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
            for name, t in times.items()}


def reprompt_ms(model, size: int, repeats: int = 30) -> tuple[float, float]:
    """Median (wall, process CPU) milliseconds of decode on a cached embedding."""
    _, box = _inputs(size)
    with torch.no_grad():
        emb = torch.randn(1, 256, size // 16, size // 16)
        for _ in range(3):
            model.decode(emb, box)
        times = [_timed(lambda: model.decode(emb, box)) for _ in range(repeats)]
    return (statistics.median(w for w, _ in times) * 1e3,
            statistics.median(c for _, c in times) * 1e3)


def embed_gflop(arch: str, size: int, ffn_ratio: float) -> dict[str, float]:
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    with torch.device("meta"):
        models = _models(arch, size, ffn_ratio)
        images = torch.empty(1, 3, size, size)
        for name, model in models.items():
            counter = FlopCounterMode(display=False)
            with counter, torch.no_grad():
                model.embed(images)
            out[name] = counter.get_total_flops() / 1e9
    return out


def memory_child(kind: str, arch: str, size: int, ffn_ratio: float) -> None:
    """Subprocess body: build one model, run one slice, print peak and growth in MB."""
    from medcl.dbsam.model import DBSAM, VanillaSAM, build_sam, make_dbsam

    torch.manual_seed(0)
    sam = build_sam(arch, size)
    if kind == BASELINE:
        model = VanillaSAM(sam)
    else:  # DBSAMLite keeps its own defaults on LiteMedSAM
        model = make_dbsam(sam) if arch == "litemedsam" else DBSAM(sam, ffn_ratio=ffn_ratio)
    model.eval()
    images, box = _inputs(size)
    before = _peak_mb()
    with torch.no_grad():
        model.decode(model.embed(images), box)
    print(json.dumps({"peak": _peak_mb(), "slice": _peak_mb() - before}))


def peak_memory(kind: str, arch: str, size: int, ffn_ratio: float) -> dict:
    cmd = [sys.executable, __file__, "--memory-child", kind, arch, str(size),
           "--ffn-ratio", str(ffn_ratio)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ)
    return json.loads(done.stdout.strip().splitlines()[-1])


def train_step_seconds(ffn_ratio: float, repeats: int = 5) -> float:
    from medcl.dbsam.model import DBSAM, build_sam

    torch.manual_seed(0)
    model = DBSAM(build_sam("tiny", 256), ffn_ratio=ffn_ratio).train()
    images, box = _inputs(256, batch=2)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        torch.nn.functional.softplus(model(images, box)).mean().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def kernel_speedup(size: int, batches: tuple[int, ...] = (1, 4),
                   repeats: int = 20) -> list[str]:
    """(f): median ``decode`` ms with ``fast=False`` (the baseline) and ``fast=True``."""
    from medcl.dbsam.model import VanillaSAM, build_sam

    torch.manual_seed(0)
    model = VanillaSAM(build_sam("tiny", size)).eval()
    lines = []
    for batch in batches:
        _, boxes = _inputs(size, batch)
        emb = torch.randn(batch, 256, size // 16, size // 16)
        ms = {}
        with torch.no_grad():
            for fast in (False, True):
                model.fast = fast
                model.decode(emb, boxes)
                ms[fast] = statistics.median(
                    _timed(lambda e=emb, b=boxes: model.decode(e, b))[0]
                    for _ in range(repeats)) * 1e3
        lines.append(f"(f) decode {size}², batch {batch}: MaskDecoder {ms[False]:.1f} ms, "
                     f"kernels {ms[True]:.1f} ms, {ms[False] / ms[True]:.2f}x")
    return lines


def _laptop_times(models: dict, repeats: int) -> dict[str, float]:
    """Median wall seconds of embed + decode per model at its own size, timed alternately."""
    inputs = {name: _inputs(size) for name, (_, size) in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.no_grad():
        for name, (model, _) in models.items():  # warm-up
            model.decode(model.embed(inputs[name][0]), inputs[name][1])
        for _ in range(repeats):
            for name, (model, _) in models.items():
                images, box = inputs[name]
                times[name].append(_timed(lambda m=model, x=images, b=box:
                                          m.decode(m.embed(x), b))[0])
    return {name: statistics.median(t) for name, t in times.items()}


def volume_seconds(model, slices: int) -> float:
    """Wall seconds of one 3-D box prompt over ``slices`` slices of a 256 x 256 volume through
    the challenge's npz protocol (every slice embedded once, then decoded)."""
    import tempfile

    import numpy as np

    from medcl.dbsam.npz import npz_case, segment_npz

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 60, size=(slices, 256, 256)).astype(np.uint8)
    imgs[:, 80:180, 70:190] += 120
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vol.npz"
        np.savez_compressed(path, imgs=imgs,
                            boxes=np.array([[70, 80, 0, 189, 179, slices - 1]]))
        case, data = npz_case(path)
        start = time.perf_counter()
        with torch.no_grad():
            segment_npz(model, case, data)
        return time.perf_counter() - start


def laptop(args) -> list[str]:
    """(g): vanilla LiteMedSAM, DB-SAM on LiteMedSAM, vanilla SAM ViT-B; the three ratios."""
    from medcl.dbsam.litemedsam import build_litemedsam
    from medcl.dbsam.model import VanillaSAM, build_sam, make_dbsam

    torch.manual_seed(0)
    lite = build_litemedsam()
    models = {"litemedsam": (VanillaSAM(lite).eval(), 256),  # share LiteMedSAM's modules
              "dbsam_lite": (make_dbsam(lite).eval(), 256)}
    if not args.skip_vit_b:
        models["vit_b"] = (VanillaSAM(build_sam("vit_b", 1024)).eval(), 1024)
    seconds = _laptop_times(models, args.laptop_repeats)
    lines = ["| model | input | slice ms wall | peak MB | slice MB |", "|---|---|---|---|---|"]
    arch = {"litemedsam": ("sam", "litemedsam"), "dbsam_lite": ("dbsam", "litemedsam"),
            "vit_b": ("sam", "vit_b")}
    for name, (_, size) in models.items():
        mem = ({"peak": float("nan"), "slice": float("nan")} if args.skip_memory
               else peak_memory(*arch[name], size, args.ffn_ratio))
        lines.append(f"| {name} | {size}² | {seconds[name] * 1e3:.0f} | {mem['peak']:.0f} | "
                     f"{mem['slice']:.0f} |")
    lite_s, db_s = seconds["litemedsam"], seconds["dbsam_lite"]
    vit_s = seconds.get("vit_b", float("nan"))
    lines += ["",
              f"ratio LiteMedSAM / ViT-B per slice: {lite_s / vit_s:.3f} (goal <= 0.1)",
              f"ratio DB-SAM-LiteMedSAM / LiteMedSAM per slice: {db_s / lite_s:.2f} "
              f"(goal <= 1.3)",
              f"ratio DB-SAM-LiteMedSAM / ViT-B per slice: {db_s / vit_s:.3f}"]
    if args.volume_slices > 0:
        vol = volume_seconds(models["litemedsam"][0], args.volume_slices)
        lines.append(f"3-D box over {args.volume_slices} slices (LiteMedSAM, npz protocol): "
                     f"{vol:.1f} s, {vol / args.volume_slices:.2f} s/slice -> "
                     f"{100 * vol / args.volume_slices:.0f} s for 100 slices (goal < 30 s)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-vit-b", action="store_true", help="leave out ViT-B at 1024")
    parser.add_argument("--repeats", type=int, default=10, help="timed slices, tiny at 256")
    parser.add_argument("--vit-b-repeats", type=int, default=2)
    parser.add_argument("--ffn-ratio", type=float, default=None,
                        help="DB-SAM's FFN ratio (default: DBSAM's own default)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--laptop", action="store_true",
                        help="run only (g): LiteMedSAM, DB-SAM on LiteMedSAM, SAM ViT-B")
    parser.add_argument("--laptop-repeats", type=int, default=3)
    parser.add_argument("--volume-slices", type=int, default=10,
                        help="slices of the (g) 3-D box run (0: skip it)")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--memory-child", nargs=3, metavar=("KIND", "ARCH", "SIZE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ffn_ratio is None:
        import inspect

        from medcl.dbsam.model import DBSAM

        args.ffn_ratio = inspect.signature(DBSAM).parameters["ffn_ratio"].default
    if args.memory_child:
        kind, arch, size = args.memory_child
        memory_child(kind, arch, int(size), args.ffn_ratio)
        return

    threads = torch.get_num_threads()
    if args.laptop:
        print(f"CPU, {threads} thread(s), torch {torch.__version__}; (g) DB-SAM on a laptop; "
              "random weights, batch 1, one box\n")
        lines = laptop(args)
        print("\n".join(lines))
        if args.out:
            from medcl.io import write_text

            write_text(args.out, "\n".join(lines) + "\n")
        return

    configs = [("tiny", 256, args.repeats), ("tiny", 1024, max(2, args.repeats // 3))]
    if not args.skip_vit_b:
        configs.append(("vit_b", 1024, args.vit_b_repeats))
    threads = torch.get_num_threads()
    print(f"CPU, {threads} thread(s), torch {torch.__version__}; DB-SAM ffn_ratio "
          f"{args.ffn_ratio}; random weights, batch 1, one box\n")
    lines = [
        "| encoder | input | model | slice ms wall | slice ms CPU | / SAM wall | / SAM CPU | "
        "re-prompt ms wall | re-prompt ms CPU | embed GFLOP | / SAM GFLOP | peak MB | slice MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for arch, size, repeats in configs:
        models = _models(arch, size, args.ffn_ratio)
        seconds = slice_times(models, size, repeats)
        gflop = embed_gflop(arch, size, args.ffn_ratio)
        for name, model in models.items():
            reprompt = reprompt_ms(model, size)
            mem = ({"peak": float("nan"), "slice": float("nan")} if args.skip_memory
                   else peak_memory(name, arch, size, args.ffn_ratio))
            label = "DB-SAM" if name == "dbsam" else "SAM"
            (wall, cpu), (base_wall, base_cpu) = seconds[name], seconds[BASELINE]
            line = (f"| {arch} | {size}² | {label} | {wall * 1e3:.0f} | {cpu * 1e3:.0f} | "
                    f"{wall / base_wall:.2f} | {cpu / base_cpu:.2f} | {reprompt[0]:.1f} | "
                    f"{reprompt[1]:.1f} | {gflop[name]:.1f} | "
                    f"{gflop[name] / gflop[BASELINE]:.2f} | {mem['peak']:.0f} | "
                    f"{mem['slice']:.0f} |")
            lines.append(line)
            print(line, flush=True)
        del models
    table = "\n".join(lines)
    step = train_step_seconds(args.ffn_ratio)
    kernels = "\n".join(line for size in (256, 1024) for line in kernel_speedup(size))
    kernels += "\n(g) DB-SAM on a laptop:\n" + "\n".join(laptop(args))
    notes = (f"\nGoals: DB-SAM / SAM <= 1.3; re-prompt <= 100 ms at 1024², <= 20 ms at 256².\n"
             f"(e) DB-SAM tiny 256², batch 2, forward + backward: {step * 1e3:.0f} ms "
             f"(median of 5).\n{kernels}\nPeak MB: peak resident set (VmHWM) of a fresh "
             f"process building one model and running one slice; slice MB: its growth during "
             f"the slice.")
    print(notes)
    if args.out:
        header = (f"CPU, {threads} thread(s), torch {torch.__version__}; "
                  f"ffn_ratio {args.ffn_ratio}\n\n")
        args.out.write_text(header + table + "\n" + notes + "\n")


if __name__ == "__main__":
    main()
