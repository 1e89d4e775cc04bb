"""``medcl core rec evaluate``: full-ranking HR@5/10/20 and NDCG@5/10/20 of a trained run on
an interaction log (each user's last item is the target, the earlier ones the history)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def load_model(run_dir: Path):
    """``(RecConfig, items, encoder)`` of a ``medcl core rec train`` run folder."""
    import pandas as pd

    from medcl.io import RunFolder
    from medcl.io.errors import ConfigError, RunFolderError

    from .rec_train import RecConfig, build

    folder = RunFolder(Path(run_dir))
    record = folder.read_config()
    try:
        if record.get("command") != "medcl core rec train":
            raise KeyError("command")
        cfg = RecConfig(**record["config"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise RunFolderError("config.yaml was not written by `medcl core rec train`",
                             path=folder.config_path,
                             fix="point --model to a rec train run folder") from exc
    items_path = folder.root / "items.csv"
    if not items_path.is_file():
        raise RunFolderError("items.csv (the item vocabulary) is missing", path=items_path,
                             fix="retrain into this folder")
    items = pd.read_csv(items_path, dtype={"item": str}, keep_default_na=False)["item"].tolist()
    state = folder.load_model()
    encoder, _ = build(cfg, len(items))
    weights = {k.removeprefix("encoder."): v for k, v in state.items()
               if k.startswith("encoder.")}
    try:
        encoder.load_state_dict(weights)
    except RuntimeError as exc:
        raise RunFolderError("model.pt does not match config.yaml and items.csv",
                             path=folder.model_path, fix="retrain into this folder") from exc
    encoder.eval()
    return cfg, items, encoder


def evaluate_run(model: Path, data: str, out: Path) -> Path:
    """Score ``model`` on ``data`` (a ``.inter`` file, or ``synth`` as the run drew it) into
    ``out``: ``config.yaml``, ``evaluation.csv``, ``ranks.csv`` and ``report.md``."""
    import pandas as pd

    from medcl.io import RunFolder, refuse_overwrite

    from .rec_train import load_sequences, metrics_table, score

    if data != "synth":
        refuse_overwrite(out, [data])
    cfg, items, encoder = load_model(model)
    seqs, _ = load_sequences(data, cfg, vocabulary=items)
    for note in seqs.notes:
        print(f"note: {note}", file=sys.stderr, flush=True)
    inputs = [s[max(0, len(s) - 1 - cfg.max_len):-1] for s in seqs.seqs]
    targets = np.array([s[-1] for s in seqs.seqs], dtype=np.int64)
    ranks = score(encoder, inputs, targets, cfg.max_len)
    if Path(out).resolve() == Path(model).resolve():
        from medcl.io.errors import ConfigError

        raise ConfigError("--out is the model's run folder",
                          fix="give another --out folder for the evaluation")
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config({"model": str(model), "data": data}, seed=cfg.seed, extra={
        "command": "medcl core rec evaluate", "users": len(seqs.users),
        "skipped_single_interaction_users": seqs.skipped_single,
        "dropped_unknown_items": seqs.dropped_unknown})
    table = folder.write_table("evaluation", pd.DataFrame([metrics_table(ranks, cfg.method)]),
                               floatfmt=".4f")
    folder.write_table("ranks", pd.DataFrame({
        "user": seqs.users, "target": [items[t - 1] for t in targets], "rank": ranks}))
    lines = [f"# {cfg.method} model evaluated on {data}", "",
             f"Model: {model}. {len(seqs.users)} users; target = each user's last item, ranked "
             f"against all {len(items)} items of the model (0-based ranks in ranks.csv).", ""]
    lines += [f"- {note}" for note in seqs.notes]
    lines += ["", table]
    folder.write_report("\n".join(lines))
    return folder.report_path
