"""One harness for SepCLR and its baselines: train on a split, probe held-out images, report.

Used by ``medcl sepclr fit`` (with attributes), ``medcl sepclr benchmark`` (digits on textures)
and the demo step, so every method is trained and scored the same way.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .config import SepCLRConfig
from .evaluate import (
    attribute_roles,
    authors_probe_table,
    leakage_summary,
    probe_table,
    represent,
)

if TYPE_CHECKING:
    from medcl.io.units import Shard


@dataclass
class MethodResult:
    method: str
    model: nn.Module
    probes: pd.DataFrame
    leakage: pd.DataFrame
    seconds_per_epoch: float
    reps: dict[str, np.ndarray]
    authors: pd.DataFrame | None = None


HOLDOUT_SEED = 0
"""Seed of the held-out split of ``fit`` and ``evaluate``: the test images are fixed by the
data, whatever the training seed (the authors score every run on one fixed test set)."""


def holdout_split(is_target: np.ndarray, fraction: float, seed: int):
    """Train / test indices, stratified by group; everything is train when ``fraction == 0``."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(is_target))
    if fraction <= 0:
        return idx, idx[:0]
    return train_test_split(idx, test_size=fraction, stratify=is_target, random_state=seed)


def run_method(cfg: SepCLRConfig, images: Tensor, is_target: Tensor, attributes: pd.DataFrame,
               train_idx: np.ndarray, test_idx: np.ndarray, run_dir: Path | None, *,
               progress: bool = True, resume: bool = False) -> MethodResult:
    """Train ``cfg.method`` on the ``train_idx`` images and probe every image's representation
    (probes fit on train rows, scored on test rows).

    ``resume``: continue from ``run_dir/checkpoints/last.pt`` when it exists (the engine's exact
    resume: the model equals an uninterrupted training's); ``seconds_per_epoch`` is then the
    mean of the logged epochs, else the wall time of the whole training per epoch.
    """
    from .train import train

    resumed = resume and run_dir is not None and (run_dir / "checkpoints" / "last.pt").exists()
    start = time.perf_counter()
    model, history = train(cfg, images[train_idx], is_target[train_idx], run_dir,
                           progress=progress, resume=resume)
    seconds = (time.perf_counter() - start) / cfg.epochs
    if resumed and history:
        seconds = float(np.mean([row["seconds"] for row in history]))
    reps = represent(model, images)
    target = is_target.numpy()
    table = probe_table(reps, attributes, target, train_idx, test_idx)
    authors = authors_probe_table(reps, attributes, target, train_idx, test_idx,
                                  cfg.probe_metric)
    return MethodResult(cfg.method, model, table, leakage_summary(table), seconds, reps,
                        authors)


OURS = "ours: "
"""Prefix of the comparison columns of our richer probe (standardised codes, probe run to
convergence); the unprefixed ones are the authors' probe (:func:`authors_probe_table`)."""


def _pair(attr: str, role: str) -> tuple[str, str]:
    own, other = ("salient", "common") if role == "salient" else ("common", "salient")
    return f"{attr} from {own} (up)", f"{attr} from {other} (down)"


def comparison_row(res: MethodResult) -> dict:
    """One method's row of the comparison, on target images: each attribute from the space
    that should hold it (up) and from the other (down), by the authors' probe and by ours
    (columns prefixed :data:`OURS`), and seconds per epoch."""
    row: dict = {"method": res.method}
    if res.authors is not None and len(res.authors):
        for (attr, role), sub in res.authors.groupby(["attribute", "role"], sort=False):
            score = dict(zip(sub.space, sub.score, strict=True))
            up, down = _pair(attr, role)
            own = "salient" if role == "salient" else "common"
            row[up] = score.get(own)
            row[down] = score.get("common" if own == "salient" else "salient")
    for r in res.leakage.itertuples():
        up, down = _pair(r.attribute, r.role)
        row[OURS + up] = r.wanted
        row[OURS + down] = r.leaked
    row["s/epoch"] = res.seconds_per_epoch
    return row


def comparison_table(results: list[MethodResult]) -> pd.DataFrame:
    """One row per method: wanted and leaked accuracy of each attribute on target images."""
    return pd.DataFrame([comparison_row(res) for res in results])


def comparison_columns(attributes: pd.DataFrame, is_target: np.ndarray) -> list[str]:
    """The columns of :func:`comparison_row`, known from the attributes before any training
    (so the benchmark's table has one column order whichever method finishes first)."""
    roles = attribute_roles(attributes, is_target).items()
    authors = [c for attr, role in roles for c in _pair(attr, role)]
    return ["method", *authors, *(OURS + c for c in authors), "s/epoch"]


BENCHMARK_HOLDOUT = 0.3
"""Share of the benchmark's images kept out of training and used to score the probes."""


def _digits_on_textures_split(n_per_group: int, size: int, seed: int):
    """Generated digits-on-textures images, their group and attributes, and a stratified 70/30
    train / held-out split."""
    from .textures import make_digits_on_textures

    data = make_digits_on_textures(n_background=n_per_group, n_target=n_per_group, size=size,
                                   seed=seed)
    images = torch.cat([data.background, data.target])
    is_target = torch.cat([torch.zeros(len(data.background), dtype=torch.bool),
                           torch.ones(len(data.target), dtype=torch.bool)])
    attributes = data.attributes.reset_index(drop=True)
    train_idx, test_idx = holdout_split(is_target.numpy(), BENCHMARK_HOLDOUT, seed)
    return images, is_target, attributes, train_idx, test_idx


UNITS_TABLE = "units.csv"
"""The benchmark's table of units (one row per method, with ``status`` and ``error``), written
as each method finishes; ``comparison.csv`` and ``report.md`` are rebuilt from it."""


def benchmark(out: Path, *, n_per_group: int = 1000, size: int = 32, epochs: int = 20,
              methods: tuple[str, ...] = ("sepclr", "simclr", "cvae"), seed: int = 0,
              base: SepCLRConfig | None = None, progress: bool = True,
              shard: Shard | None = None) -> str:
    """Digits on textures: every method at the same budget; returns the Markdown report.

    Each method is one unit of :func:`medcl.io.units.run_units`: its row goes to
    ``units.csv`` as soon as it is trained and probed, and ``comparison.csv`` and ``report.md``
    are rebuilt from the rows present after every method, so ``out`` always shows what is done.
    Rerunning the same command on ``out`` skips the methods done (a method interrupted during
    training continues from its last epoch checkpoint), runs failed ones again, and ends with
    the same table as an uninterrupted run (but for ``s/epoch``, a wall time); ``out`` holding
    a benchmark of other settings is refused before anything is written. ``methods`` is not
    part of those settings: a rerun with more methods adds them.

    Writes into ``out``: ``units.csv`` (one row per method: the comparison's columns,
    ``status``, ``error``), ``units.inputs.json`` (the settings it was computed from),
    ``comparison.csv`` (one row per method done, as in the report), ``probes_<method>.csv``
    (every probe of every method), ``tsne_<first method>.png``, ``report.md``, ``config.yaml``
    and one run folder per method (``<method>/metrics.csv`` is its per-epoch training log,
    ``<method>/model.pt`` its weights, ``<method>/checkpoints/last.pt`` its resume point).

    Parameters
    ----------
    progress : bool
        Plain flushed lines as each method starts and ends (``[method k/N] ...``, elapsed,
        ETA) and the training engine's epoch bar on a terminal; ``False`` for neither.
    shard : medcl.io.units.Shard, optional
        This process's share of the methods (default: from torchrun/SLURM, else all).

    Raises
    ------
    medcl.io.RunFolderError
        After the report is written, when a method failed (its error is in ``units.csv``).
    """
    from medcl.io import RunFolder, RunFolderError
    from medcl.io.units import check_signature, run_units, signature_path

    from .evaluate import target_chance

    base = base or SepCLRConfig(encoder="small", widths=[8, 16, 32, 64], common_dim=16,
                                salient_dim=16, batch_size=256)
    base = replace(base, epochs=epochs, seed=seed, image_size=size, channels=1)
    units_csv = Path(out) / UNITS_TABLE
    signature = {"dataset": "digits_on_textures", "n_per_group": n_per_group,
                 "benchmark_holdout": BENCHMARK_HOLDOUT,
                 **{k: v for k, v in asdict(base).items() if k != "method"}}
    check_signature(units_csv, signature)  # before anything is written into `out`
    # a method's checkpoint is resumed only in a folder of these very settings
    resume = signature_path(units_csv).exists()
    images, is_target, attributes, train_idx, test_idx = _digits_on_textures_split(
        n_per_group, size, seed)
    target = is_target.numpy()
    folder = RunFolder.create(out)
    folder.write_config(base, seed=seed, extra={"dataset": "digits_on_textures",
                                                "n_per_group": n_per_group,
                                                "methods": list(methods),
                                                "holdout": BENCHMARK_HOLDOUT})
    chance = target_chance(attributes, target, train_idx)
    first = methods[0]

    def work(key: dict, method: str) -> list[dict]:
        res = run_method(replace(base, method=method), images, is_target, attributes,
                         train_idx, test_idx, folder.root / method, progress=progress,
                         resume=resume)
        RunFolder.create(folder.root / method).save_model(res.model.state_dict())
        folder.write_table(f"probes_{method}", res.probes.assign(method=method))
        if method == first:
            _save_tsne(folder, f"tsne_{method}", res.reps, attributes, target, seed)
        return [{k: v for k, v in comparison_row(res).items() if k != "method"}]

    def on_table(table: pd.DataFrame) -> None:
        folder.write_report(_benchmark_report(folder, table, methods, n_per_group, size,
                                              epochs, chance, base))

    result = run_units([({"method": m}, m) for m in methods], work, units_csv,
                       columns=comparison_columns(attributes, target), signature=signature,
                       progress="lines" if progress else "quiet", what="method", shard=shard,
                       on_table=on_table)
    on_table(result.table)  # also when every method was done already
    report = folder.report_path.read_text(encoding="utf-8")
    bad = result.table[(result.table.status == "failed")
                       & result.table.method.isin(methods)]
    if len(bad):
        reasons = "; ".join(f"{r.method}: {r.error}" for r in bad.itertuples())
        raise RunFolderError(f"{len(bad)} of {len(methods)} methods failed ({reasons})",
                             path=units_csv, fix="see report.md; rerun the same command to run "
                             "the failed methods again (the others are kept)")
    return report


def protocol_label(cfg: SepCLRConfig) -> str:
    """One line naming what a run trained: encoder, views, augmentations, loss weights."""
    enc = ("ResNet-18 (torchvision" + (", pretrained" if cfg.pretrained else "") + ")"
           if cfg.encoder == "resnet18"
           else f"small MONAI ResNet ({','.join(map(str, cfg.widths))} channels, 1 block/stage)")
    aug = (f"crop scale ({cfg.crop_scale:g}, {cfg.crop_scale_max:g})"
           + (f" to {cfg.crop_size} px" if cfg.crop_size else "")
           + (f", h-flip {cfg.hflip:g}" if cfg.hflip else "")
           + (f", v-flip {cfg.vflip:g}" if cfg.vflip else "")
           + (f", jitter ({', '.join(f'{j:g}' for j in cfg.jitter)}) p {cfg.jitter_p:g}"
              if cfg.jitter_p else "")
           + (f", grayscale p {cfg.grayscale_p:g}" if cfg.grayscale_p else "")
           + (f", rotation {cfg.rotation:g} deg" if cfg.rotation else ""))
    views = ("one forward pass per view" if cfg.views == "separate"
             else "both views in one forward pass")
    weights = "/".join(f"{w:g}" for w in (cfg.common_weight, cfg.salient_weight,
                                          cfg.regulariser_weight, cfg.mi_weight))
    return (f"encoder {enc}, code {cfg.common_dim} + {cfg.salient_dim}; {views}; "
            f"augmentations: {aug}; SepCLR loss weights {weights}; batch {cfg.batch_size}, "
            f"Adam {cfg.lr:g}")


def _benchmark_report(folder, table: pd.DataFrame, methods: tuple[str, ...], n_per_group: int,
                      size: int, epochs: int, chance: dict[str, float],
                      base: SepCLRConfig) -> str:
    """``report.md`` (and ``comparison.csv``) from the rows of ``units.csv`` present now."""
    from medcl.io.runs import to_markdown_table

    rows = table[table.method.isin(methods)]
    ok = rows[rows.status == "ok"]
    order = {m: i for i, m in enumerate(methods)}
    ok = ok.assign(_o=ok.method.map(order)).sort_values("_o", kind="stable")
    comparison = ok.drop(columns=["_o", "status", "error"]).reset_index(drop=True)
    folder.write_table("comparison", comparison)
    ours = ["method", *(c for c in comparison.columns if c.startswith(OURS))]
    authors = ["method", *(c for c in comparison.columns if c not in ours)]
    md_authors = to_markdown_table(comparison[authors])
    md_ours = (comparison[ours].rename(columns=lambda c: c.removeprefix(OURS))
               .pipe(to_markdown_table))

    def rate(attr: str) -> str:
        return f"{chance[attr]:.2f}" if attr in chance else "n/a"

    first = methods[0]
    failed = rows[rows.status == "failed"]
    pending = [m for m in methods if m not in set(rows.method)]
    notes = [f"- {r.method} failed: {r.error}" for r in failed.itertuples()]
    notes += [f"- not run yet: {', '.join(pending)}"] if pending else []
    report = (
        "## sepclr: digits on textures\n\n"
        f"{n_per_group} background texture patches and {n_per_group} target patches with a "
        f"handwritten digit ({size}x{size}); every method trained {epochs} epochs on 70% of the "
        f"images ({protocol_label(base)}), then linear probes fit on those images' codes and "
        "scored on the held-out 30% of target images. `(up)`: wanted information, higher is "
        "better; `(down)`: leaked information, lower is better (chance: digit "
        f"{rate('digit')}, texture {rate('texture')}).\n\n"
        "### Authors' probe (default LogisticRegression on the raw codes, target images, "
        f"{base.probe_metric.replace('_', ' ')})\n\n{md_authors}\n\n"
        "### Our probe (standardised codes, logistic regression to convergence; the "
        "`ours: ` columns of comparison.csv)\n\n"
        f"{md_ours}\n"
    )
    if notes:
        report += "\n" + "\n".join(notes) + "\n"
    if (folder.root / f"tsne_{first}.png").exists():
        report += f"\n![t-SNE of {first}](tsne_{first}.png)\n"
    return report


def _save_tsne(folder, name: str, reps: dict[str, np.ndarray], attributes: pd.DataFrame,
               is_target: np.ndarray, seed: int) -> None:
    """Draw the t-SNE maps of both spaces into ``<name>.png``."""
    import matplotlib.pyplot as plt

    from .evaluate import tsne_figure

    fig = tsne_figure(reps, attributes, is_target, seed=seed)
    folder.save_figure(name, fig)
    plt.close(fig)


def _report_probes(folder, results_reps, attributes, is_target, train_idx, test_idx,
                   seed: int, metric: str = "accuracy") -> str:
    """Write ``authors_probes.csv``, ``probes.csv``, ``leakage.csv`` and ``tsne.png``; return
    their Markdown, each table labelled."""
    table = probe_table(results_reps, attributes, is_target, train_idx, test_idx)
    if table.empty:
        return ("No attribute has two classes in a group's training rows: nothing to probe.\n")
    authors = authors_probe_table(results_reps, attributes, is_target, train_idx, test_idx,
                                  metric)
    authors_md = (folder.write_table("authors_probes", authors) if len(authors)
                  else "(no attribute has two classes in the training target images)")
    probes_md = folder.write_table("probes", table)
    leakage_md = folder.write_table("leakage", leakage_summary(table))
    _save_tsne(folder, "tsne", results_reps, attributes, is_target, seed)
    return ("### Linear probes, the authors' protocol (default LogisticRegression on the codes; "
            "target images; "
            f"fit on training rows, scored on the fixed held-out rows; {metric})\n\n"
            f"{authors_md}\n\n"
            "### Linear probes, ours (standardised codes, logistic regression to convergence; "
            f"fit on training rows, scored on held-out rows of each group)\n\n{probes_md}\n\n"
            "### Leakage on target images, our probes (wanted: "
            f"higher is better; leaked: lower is better)\n\n{leakage_md}\n\n"
            "![t-SNE of both spaces](tsne.png)\n")


def fit_run(cfg: SepCLRConfig, background: Path, target: Path, out: Path, *,
            attributes: Path | None = None, progress: bool = True, resume: bool = False) -> Path:
    """``medcl sepclr fit``: read and check every input, then train, save, probe and report.

    Inputs are validated before the run folder is created, so bad input leaves nothing behind.
    With ``attributes`` a stratified ``cfg.holdout`` share of the images is kept out of
    training and used to score the probes; the split depends on the data only
    (:data:`HOLDOUT_SEED`), so runs of other seeds are scored on the same images. Writes
    ``config.yaml``, ``metrics.csv`` (the per-epoch training log), ``model.pt``, ``report.md``
    and, with attributes, ``split.csv`` (each image's split), ``authors_probes.csv``,
    ``probes.csv``, ``leakage.csv`` and ``tsne.png``.
    """
    from medcl.io import RunFolder

    from .data import load_contrastive, load_group_attributes
    from .train import train

    if cfg.pretrained is not None:  # checked before anything is written
        from .model import read_resnet18_weights

        read_resnet18_weights(cfg.pretrained)
    data = load_contrastive(background, target, size=cfg.image_size, channels=cfg.channels,
                            nifti_slice=cfg.nifti_slice)
    attrs = load_group_attributes(attributes, data) if attributes is not None else None
    cfg = replace(cfg, image_size=int(data.images.shape[-1]), channels=int(data.images.shape[1]))
    is_target = data.is_target.numpy()
    if attrs is not None:
        train_idx, test_idx = holdout_split(is_target, cfg.holdout, HOLDOUT_SEED)
    else:
        train_idx, test_idx = np.arange(len(is_target)), np.arange(0)
    folder = RunFolder.create(out)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "background": str(background), "target": str(target),
        "attributes": None if attributes is None else str(attributes),
        "n_background": int((~is_target).sum()), "n_target": int(is_target.sum()),
        "n_train": len(train_idx), "data_notes": list(data.notes)})
    model, history = train(cfg, data.images[train_idx], data.is_target[train_idx], folder.root,
                           progress=progress, resume=resume)
    folder.save_model(model.state_dict())
    last = history[-1] if history else {}
    terms = ", ".join(f"{k} {v:.4g}" for k, v in last.items()
                      if k not in ("epoch", "step", "lr", "seconds"))
    notes = "".join(f"- {n}\n" for n in data.notes) or "- none\n"
    report = (f"# SepCLR run ({cfg.method})\n\n{protocol_label(cfg)}"
              + (f" (settings of data card `{cfg.card}`)" if cfg.card else "") + ".\n\n"
              f"Background `{background}`: {int((~is_target).sum())} images; target `{target}`: "
              f"{int(is_target.sum())} images; {cfg.channels} channel(s), {cfg.image_size} px. "
              f"Trained on {len(train_idx)} images for {cfg.epochs} epochs (last epoch: "
              f"{terms}).\n\nInput notes:\n{notes}\n")
    if attrs is not None and len(test_idx):
        split = np.full(len(is_target), "train", dtype=object)
        split[test_idx] = "test"
        folder.write_table("split", pd.DataFrame({"name": data.names, "split": split}))
        reps = represent(model, data.images)
        report += _report_probes(folder, reps, attrs, is_target, train_idx, test_idx, cfg.seed,
                                 cfg.probe_metric)
    folder.write_report(report)
    return folder.report_path


def evaluate_run(model_dir: Path, background: Path, target: Path, attributes: Path,
                 out: Path, *, test_fraction: float = 0.3) -> Path:
    """``medcl sepclr evaluate``: probe a trained run's spaces on new labelled images.

    Writes into ``out``: ``probes.csv`` (every attribute from every space and group),
    ``leakage.csv``, ``tsne.png`` and ``report.md``; no ``metrics.csv``, which in a run folder
    is always a per-epoch training log.
    """
    from medcl.io import RunFolder

    from .data import load_contrastive, load_group_attributes
    from .train import load_run

    cfg, model = load_run(model_dir)
    data = load_contrastive(background, target, size=cfg.image_size, channels=cfg.channels,
                            nifti_slice=cfg.nifti_slice)
    attrs = load_group_attributes(attributes, data)
    is_target = data.is_target.numpy()
    train_idx, test_idx = holdout_split(is_target, test_fraction, HOLDOUT_SEED)
    folder = RunFolder.create(out)
    folder.write_config({"model": str(model_dir), "background": str(background),
                         "target": str(target), "attributes": str(attributes),
                         "test_fraction": test_fraction, "method": cfg.method}, seed=cfg.seed)
    reps = represent(model, data.images)
    body = _report_probes(folder, reps, attrs, is_target, train_idx, test_idx, cfg.seed,
                          cfg.probe_metric)
    folder.write_report(f"# SepCLR evaluation of `{model_dir}` ({cfg.method})\n\n{body}")
    return folder.report_path
