"""GPU check of MVCNet (for a machine with CUDA): train a few epochs on simulated data with AMP,
confirm the loss falls, and that CUDA and CPU predictions agree on the same weights.

Run: ``.venv/bin/python benchmarks/gpu_check_mvcnet.py`` (exits 1 when a check fails, 2 without
CUDA).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    from medcl.mvcnet.config import MVCNetConfig
    from medcl.mvcnet.harness import _align_all, load_data
    from medcl.mvcnet.simulate import write_simulated
    from medcl.mvcnet.train import predict_proba, train_mvcnet

    with tempfile.TemporaryDirectory() as tmp:
        files = write_simulated(Path(tmp), subjects=2, fmt="fif")
        cfg = MVCNetConfig(epochs=8, seeds=[1])
        data = load_data(cfg, files=files, events="left=769,right=770")
    X = _align_all(cfg, data)
    model, history = train_mvcnet(cfg, X, data.y, ch_names=data.ch_names, sfreq=data.sfreq,
                                  classes=data.classes, seed=1, accelerator="cuda")
    losses = [row["loss"] for row in history]
    print("loss per epoch:", " ".join(f"{v:.3f}" for v in losses))
    cpu = predict_proba(model.cpu(), X)
    gpu = predict_proba(model.cuda(), X)
    agree = float((cpu.argmax(1) == gpu.argmax(1)).mean())
    max_diff = float(np.abs(cpu - gpu).max())
    print(f"CPU vs CUDA predictions: {agree:.3f} agreement, max probability difference "
          f"{max_diff:.2e}; device {torch.cuda.get_device_name(0)}")
    ok = losses[-1] < losses[0] and agree == 1.0 and max_diff < 1e-3
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
