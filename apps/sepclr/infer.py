"""``medcl sepclr embed``: common and salient representations of a folder of images."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def embed_folder(model_dir: Path, images: Path, out: Path) -> pd.DataFrame:
    """Write one row per image (``file``, ``common_0..``, ``salient_0..``) to ``out``
    (``.parquet`` or ``.csv``) and return the table."""
    from medcl.io import ConfigError, atomic_path, refuse_overwrite

    from .data import load_image_folder
    from .evaluate import represent
    from .train import load_run

    suffix = Path(out).suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(f"unknown output format {suffix or '(none)'!r}", path=out,
                          fix="name the output *.parquet or *.csv")
    cfg, model = load_run(model_dir)
    data = load_image_folder(images, size=cfg.image_size, channels=cfg.channels,
                             nifti_slice=cfg.nifti_slice)
    refuse_overwrite(out, [images / n for n in data.names])
    reps = represent(model, data.images)
    table = pd.DataFrame({"file": data.names})
    for space, z in reps.items():
        table = pd.concat([table, pd.DataFrame(z, columns=[f"{space}_{i}"
                                                           for i in range(z.shape[1])])], axis=1)
    with atomic_path(out) as tmp:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return table
