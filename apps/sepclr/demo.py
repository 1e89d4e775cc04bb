"""The SepCLR step of ``medcl demo`` (registered in the ``medcl.demos`` entry points)."""

from __future__ import annotations

from pathlib import Path

from medcl.io.cli import DemoStep


def _run(run_dir: Path, epochs: int | None, seed: int) -> str:
    from .cards import apply_card
    from .config import SepCLRConfig
    from .harness import benchmark

    base = apply_card(SepCLRConfig(encoder="small", widths=[8, 16, 32, 64], common_dim=16,
                                   salient_dim=16, batch_size=64, lr=1e-3), "digits_on_textures")
    return benchmark(run_dir, n_per_group=500, epochs=20 if epochs is None else epochs,
                     methods=("sepclr", "simclr", "cvae"), seed=seed, base=base)


STEP = DemoStep(
    "sepclr",
    "SepCLR vs pooled SimCLR vs contrastive VAE on generated digits-on-textures: is the digit "
    "in the salient space and the texture in the common one? (about 80 s on 2 CPU cores)",
    _run,
)
