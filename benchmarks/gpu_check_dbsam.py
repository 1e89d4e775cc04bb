"""GPU check of DB-SAM (for a machine with CUDA): the ViT-B architecture at 1024 x 1024 with
random weights under AMP; per-slice time of DB-SAM against vanilla SAM, and one training
step's time and peak memory with a Dice + cross-entropy loss, in one short run.

(a) per slice = ``embed`` + ``decode``, batch 1, one box, ``torch.no_grad``; warm-up, then the
    median of ``--repeats`` slices timed with CUDA events; goal DB-SAM / SAM <= 1.3.
(b) one training step (forward, ``monai.losses.DiceCELoss(sigmoid=True)`` on the 256 x 256
    low-resolution logits, backward, AdamW step on the trainable parameters), batch
    ``--batch``; peak memory is ``torch.cuda.max_memory_allocated`` over that step.
(c) untrained DB-SAM's embedding equals SAM's on the device (fp32; difference <= 1e-5), as it
    does exactly on the CPU.
(d) the decoder kernels (``fast=True``) give segment-anything's own ``MaskDecoder``'s masks
    (``fast=False``) on the device, fp32, batch 2 with one box each (rtol 1e-4, atol 1e-4).

Run: ``.venv/bin/python benchmarks/gpu_check_dbsam.py [--dtype bf16|fp16] [--batch 2]``
(exits 1 when a check fails, 2 without CUDA).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys

import torch


def _inputs(batch: int, size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=gen)
    boxes = (torch.tensor([[0.2, 0.25, 0.6, 0.7]]) * size).repeat(batch, 1)
    target = torch.zeros(batch, 1, size // 4, size // 4)
    target[..., size // 16:size // 6, size // 18:size // 7] = 1.0
    return images.to(device), boxes.to(device), target.to(device)


def slice_ms(model, images, boxes, dtype, repeats: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        for i in range(repeats + 3):
            start.record()
            model.decode(model.embed(images), boxes)
            end.record()
            torch.cuda.synchronize()
            if i >= 3:
                times.append(start.elapsed_time(end))
    return statistics.median(times)


def train_step(model, images, boxes, target, dtype) -> tuple[float, float, float]:
    """(step ms, peak MiB, loss) of the second of two steps."""
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(sigmoid=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    model.train()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(2):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start.record()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype):
            logits = model(images, boxes)
        loss = loss_fn(logits.float(), target)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        end.record()
        torch.cuda.synchronize()
    model.eval()
    return start.elapsed_time(end), torch.cuda.max_memory_allocated() / 2**20, loss.item()


def kernels_match(model, images, boxes) -> tuple[bool, float]:
    """(d): whether ``fast=True`` and ``fast=False`` decode to the same masks; max difference."""
    with torch.no_grad():
        emb = model.embed(images)
        model.fast = False
        plain = model.decode(emb, boxes)
        model.fast = True
        fast = model.decode(emb, boxes)
    return (bool(torch.allclose(fast, plain, rtol=1e-4, atol=1e-4)),
            float((fast - plain).abs().max()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["bf16", "fp16"], default=None,
                        help="AMP type (default: bf16 where supported, else fp16)")
    parser.add_argument("--batch", type=int, default=2, help="training-step batch")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    from medcl.dbsam.model import DBSAM, VanillaSAM, build_sam, parameter_counts

    device = torch.device("cuda")
    if args.dtype is None:
        args.dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float16
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False  # (c), (d) compare fp32 results
    torch.backends.cudnn.allow_tf32 = False
    sam = build_sam("vit_b", args.size)
    models = {"SAM": VanillaSAM(copy.deepcopy(sam)).to(device).eval(),
              "DB-SAM": DBSAM(sam).to(device).eval()}

    images, boxes, target = _inputs(1, args.size, device)
    with torch.no_grad():
        diff = float((models["SAM"].embed(images) - models["DB-SAM"].embed(images)).abs().max())
    same = diff <= 1e-5  # equal on the CPU; kernels chosen per call may differ in the last bit
    kernels_ok, kernel_diff = kernels_match(models["DB-SAM"], *_inputs(2, args.size, device)[:2])
    times = {name: slice_ms(m, images, boxes, dtype, args.repeats) for name, m in models.items()}
    batch = _inputs(args.batch, args.size, device)
    steps = {name: train_step(m, *batch, dtype) for name, m in models.items()}

    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, AMP {args.dtype}, "
          f"vit_b at {args.size}², random weights\n")
    print("| model | trainable M | slice ms | / SAM | train step ms (batch "
          f"{args.batch}) | peak train MiB | loss |\n|---|---|---|---|---|---|---|")
    for name, model in models.items():
        step_ms, peak, loss = steps[name]
        print(f"| {name} | {parameter_counts(model)['trainable'] / 1e6:.1f} | "
              f"{times[name]:.1f} | {times[name] / times['SAM']:.2f} | {step_ms:.0f} | "
              f"{peak:.0f} | {loss:.3f} |")
    ratio = times["DB-SAM"] / times["SAM"]
    finite = all(torch.isfinite(torch.tensor(s[2])) for s in steps.values())
    print(f"\nuntrained DB-SAM embedding vs SAM's on CUDA (fp32): max difference {diff:.1e}; "
          f"DB-SAM / SAM per slice {ratio:.2f} (goal <= 1.3); losses finite: {finite}")
    print(f"decoder kernels vs segment-anything's MaskDecoder on CUDA (fp32): max difference "
          f"{kernel_diff:.1e}, match: {kernels_ok}")
    ok = same and finite and kernels_ok
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
