"""The MVCNet step of ``medcl demo``: simulate, train briefly, compare with CSP+LDA, report."""

from __future__ import annotations

import shutil
from pathlib import Path

from medcl.io.cli import DemoStep


def _run(run_dir: Path, epochs: int | None, seed: int) -> str:
    from .config import MVCNetConfig
    from .harness import load_data, train_run
    from .simulate import write_simulated

    recordings = Path(run_dir) / "recordings"
    files = sorted(recordings.glob("*.edf")) if recordings.exists() else []
    if len(files) != 3:  # a previous tour's recordings are reused as they are
        files = write_simulated(recordings, subjects=3, fmt="edf", n_trials_per_class=40,
                                seed=seed, overwrite=True)
    # CPU-sized: 125 Hz (500 samples), a 128-wide projector, batch 16 (the paper: 250 Hz, 2048,
    # batch 64 on a GPU)
    cfg = MVCNetConfig(epochs=15 if epochs is None else epochs, seeds=[seed + 1],
                       trans_hidden=128, resample=125.0, batch_size=16, protocol="co")
    data = load_data(cfg, files=files, events="left=769,right=770")
    if (Path(run_dir) / "run").exists():  # a tour starts afresh (a resumed run keeps its inputs)
        shutil.rmtree(Path(run_dir) / "run")
    report = train_run(cfg, data, ["mvcnet", "csp_lda"], Path(run_dir) / "run",
                       sources={"data": [str(f) for f in files], "events": "left=769,right=770"},
                       progress=False)
    text = report.read_text()
    body = text.split("\n", 2)[2] if text.startswith("# ") else text
    return ("## mvcnet: simulated motor imagery\n\nThree simulated subjects (22 channels, 250 Hz, "
            "40 left- and 40 right-hand trials each, written as EDF and read back), MVCNet "
            f"({cfg.epochs} epochs, resampled to {cfg.resample:g} Hz, projector width "
            f"{cfg.trans_hidden}, batch {cfg.batch_size}) vs CSP+LDA. "
            + body.replace("](", "](run/"))


STEP = DemoStep(
    "mvcnet",
    "Simulated 22-channel motor imagery written as EDF: MVCNet vs CSP+LDA under the CO protocol.",
    _run,
)
