"""``medcl core image embed``: encoder features of a folder of images."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def embed_folder(model_dir: Path, images: Path, out: Path) -> pd.DataFrame:
    """Write one row per image (``file``, ``z_0..z_{F-1}``) to ``out`` (``.parquet`` or
    ``.csv``) and return the table.

    Images are read as the run was trained: resized to its image size (a note is not needed,
    the run's size is the contract) and converted to its channels. Nothing is written unless
    every image was read.
    """
    from medcl.contrastive.probe import embed
    from medcl.io import ConfigError, atomic_path, refuse_overwrite

    from .data import read_folder
    from .train import load_run

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(f"unknown output format {suffix or '(none)'!r}", path=out,
                          fix="name the output *.parquet or *.csv")
    _, info, encoder = load_run(model_dir)
    data = read_folder(images, size=(int(info["height"]), int(info["width"])),
                       channels=int(info["channels"]), want_labels=False)
    refuse_overwrite(out, [Path(images) / n for n in data.names])
    z = embed(encoder, data.images)
    table = pd.concat([pd.DataFrame({"file": data.names}),
                       pd.DataFrame(z, columns=[f"z_{i}" for i in range(z.shape[1])])], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return table
