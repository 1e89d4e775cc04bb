"""The PI-RADS step of ``medcl demo``: train briefly on phantoms, per-zone Dice of the dual-path
network vs the single-path baseline on held-out phantoms."""

from __future__ import annotations

from pathlib import Path

from medcl.io.cli import DemoStep


def _run(run_dir: Path, epochs: int | None, seed: int) -> str:
    import shutil

    from .config import PiradsConfig
    from .harness import evaluate_run, train_run
    from .phantom import write_phantoms

    run_dir = Path(run_dir)
    data = run_dir / "phantoms"
    for owned in (data, run_dir / "run", run_dir / "eval"):
        if owned.exists():  # a previous tour's folders are rewritten: the step owns them
            shutil.rmtree(owned)
    train_images, train_labels = write_phantoms(data / "train", n=8, seed=seed)
    test_images, test_labels = write_phantoms(data / "test", n=4, seed=seed + 1000)
    n = 10 if epochs is None else epochs
    # augmentation off: at 10 epochs on 6 phantoms it slows learning more than it helps
    # (measured mean Dice over the 4 zones 0.39 with it, 0.55 without); real data want it on
    cfg = PiradsConfig.preset("cpu", epochs=n, cotrain_epochs=max(1, n // 5), batch_size=2,
                              lr=3e-3, seed=seed, augment=False)
    train_run(cfg, train_images, train_labels, run_dir / "run", progress=False)
    report = evaluate_run(run_dir / "run", test_images, test_labels, run_dir / "eval",
                          baseline=True)
    body = report.read_text().split("\n", 2)[2]
    return ("## pirads: prostate zones on phantoms\n\n8 training (2 of them held out to pick "
            "the best epoch) and 4 held-out phantom T2 "
            f"volumes (96x96x24 at 0.5x0.5x3 mm); dual-path network ({cfg.epochs} supervised + "
            f"{cfg.cotrain_epochs} co-training epochs, CPU-sized filters {cfg.filters}, no "
            "augmentation at this budget) vs the single-path MONAI baseline with the same "
            "budget. " + body.replace("](", "](eval/"))


STEP = DemoStep(
    "pirads",
    "Prostate-zone phantoms: dual-path vs single-path per-zone Dice on held-out cases.",
    _run,
)
