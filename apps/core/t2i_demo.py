"""The ``core-t2i`` step of ``medcl demo``: DAMSM + SupCon encoders and the light GAN with label
SupCon on a small ``shapes`` set at 32x32, then images generated from captions (about a minute
on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

from medcl.io.cli import DemoStep

DEMO_SHAPES = 192
DEMO_SIZE = 32
DEMO_GAN_SECONDS = 30.0
DEMO_TEXTS = ("a large red circle", "a small green square", "a large blue triangle",
              "a red digit seven")


def _run(run_dir: Path, epochs: int | None, seed: int) -> str:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest; more thrash on a busy machine
    try:
        return _steps(Path(run_dir), epochs, seed)
    finally:
        torch.set_num_threads(threads)


def _steps(run_dir: Path, epochs: int | None, seed: int) -> str:
    import pandas as pd

    from .t2i_train import EncoderConfig, GANConfig, generate_run, pretrain_run, train_run

    enc = run_dir / "encoders"
    pretrain_run(EncoderConfig(data="shapes", image_size=DEMO_SIZE, n_shapes=DEMO_SHAPES,
                               epochs=epochs or 4, batch_size=32, seed=seed), enc,
                 progress=False)
    gan = run_dir / "gan"
    train_run(GANConfig(data="shapes", encoders=str(enc), supcon=True, epochs=epochs or 1,
                        batch_size=16, ngf=8, ndf=8, n_shapes=DEMO_SHAPES, seed=seed), gan,
              progress=False, budget_seconds=None if epochs else DEMO_GAN_SECONDS)
    for k, text in enumerate(DEMO_TEXTS):
        generate_run(gan, text, 8, run_dir / f"generate_{k}", seed)
    log = pd.read_csv(gan / "metrics.csv")
    links = "\n".join(f"- {t!r}: ![{t}](generate_{k}/grid.png)"
                      for k, t in enumerate(DEMO_TEXTS))
    return ("## core-t2i: text to image with label-guided supervised contrast\n\n"
            f"DAMSM + label SupCon encoders, then a DF-GAN-style GAN with SupCon on two "
            f"parameter-sharing branches, {len(log)} epoch(s) on {DEMO_SHAPES} generated "
            f"{DEMO_SIZE}x{DEMO_SIZE} scenes (a demo size: quality needs `medcl core t2i "
            "train` for longer). Held-out captions:\n\n![samples](gan/samples.png)\n\n"
            f"`medcl core t2i generate`:\n\n{links}\n")


STEP = DemoStep(
    "core-t2i",
    "Text-to-image on generated shape scenes: DAMSM + SupCon encoders, a light GAN with label "
    f"SupCon ({DEMO_GAN_SECONDS:.0f} s of GAN training), images generated from captions "
    "(about a minute on 2 CPU cores)",
    _run,
)
