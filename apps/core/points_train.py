"""Pretraining, probing and comparing the point methods (``medcl core points``).

A step draws two views of each of ``batch_size`` clouds (:func:`~medcl.core.points_data.
scan_view`), with segments computed once per cloud (RANSAC planes + DBSCAN,
:func:`medcl.contrastive.points.segment_cloud`) and inherited by the views, and the true
correspondences between the views; the loss is the method's (:class:`medcl.contrastive.points.
PointMethod`). Probes read the frozen encoder: a per-point linear probe (logistic regression on
standardised features) trained on 1 %, 10 % or 100 % of the training clouds' labelled points and
scored by mIoU on the held-out clouds, and a cloud classifier (logistic regression on the
max + mean pooled features) scored by accuracy.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medcl.io.errors import ConfigError, InputFileError, RunFolderError

from .points_data import (
    CloudSet,
    check_for_training,
    correspondences,
    load_clouds,
    make_scenes,
    normalise_cloud,
    sample_points,
    scan_view,
)

METHODS = ("fac", "pointcontrast", "simclr")
BACKBONES = ("dgcnn", "pointnet")


@dataclass
class PointsConfig:
    """Hyper-parameters of one point pretraining run (CLI flags override)."""

    method: str = "fac"
    data: str = "scenes"
    backbone: str = "dgcnn"
    points: int = 4096
    epochs: int = 20
    batch_size: int = 4
    lr: float = 1e-3
    temperature: float | None = None
    samples: int = 512
    pairs: int = 512
    width: int = 64
    out_dim: int = 64
    k: int = 16
    scenes: int = 24
    test_fraction: float = 0.25
    fractions: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0])
    seed: int = 0

    def check(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method!r} is unknown",
                              fix=f"give one of {', '.join(METHODS)}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"--backbone {self.backbone!r} is unknown",
                              fix=f"give one of {', '.join(BACKBONES)}")
        if self.points < 32:
            raise ConfigError(f"--points {self.points} is too few", fix="give at least 32")
        if self.epochs < 1 or self.batch_size < 1 or self.scenes < 1:
            raise ConfigError("--epochs, --batch-size and --scenes must be >= 1",
                              fix="give e.g. 2")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"--label-fraction {self.fractions} must lie in (0, 1]",
                              fix="give e.g. 0.01,0.1,1")


@dataclass
class Trained:
    model: Any
    history: list[dict[str, float]]
    seconds: float


def build(cfg: PointsConfig):
    from medcl.contrastive.points import build_point_method

    return build_point_method(cfg.method, backbone=cfg.backbone, width=cfg.width,
                              out_dim=cfg.out_dim, temperature=cfg.temperature,
                              samples=cfg.samples, k=min(cfg.k, cfg.points))


def add_segments(cs: CloudSet) -> None:
    from medcl.contrastive.points import segment_cloud

    for i, c in enumerate(cs.clouds):
        if c.segments is None:
            c.segments = segment_cloud(c.xyz.astype(np.float64), seed=i)


def split_clouds(cs: CloudSet, cfg: PointsConfig) -> tuple[CloudSet, CloudSet]:
    """Scenes: ``cfg.scenes`` training rooms and a third as many held-out rooms (other seeds).
    Files: a seeded ``test_fraction`` of the clouds held out (at least one)."""
    if cs.source == "scenes":
        test = make_scenes(max(2, cfg.scenes // 3), seed=10_000 + cfg.seed)
        return cs, test
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(cs.clouds))
    n_test = max(1, int(round(cfg.test_fraction * len(cs.clouds)))) if len(cs.clouds) > 1 else 0
    pick = [cs.clouds[i] for i in order]
    return (replace(cs, clouds=pick[n_test:] or pick), replace(cs, clouds=pick[:n_test]))


def make_batch(clouds: list, cfg: PointsConfig, rng: np.random.Generator):
    from medcl.contrastive.points import ViewPair

    k = max(c.segments.n_segments for c in clouds) or 1
    x1, x2, s1, s2, fg, cr = [], [], [], [], [], []
    for c in clouds:
        a, i1 = scan_view(c, cfg.points, rng)
        b, i2 = scan_view(c, cfg.points, rng)
        x1.append(a)
        x2.append(b)
        s1.append(c.segments.ids[i1])
        s2.append(c.segments.ids[i2])
        f = np.zeros(k, dtype=bool)
        f[: c.segments.n_segments] = c.segments.foreground
        fg.append(f)
        cr.append(correspondences(c, i1, i2, cfg.pairs, rng))
    t = torch.as_tensor
    return ViewPair(t(np.stack(x1)), t(np.stack(x2)), t(np.stack(s1)), t(np.stack(s2)),
                    t(np.stack(fg)), t(np.stack(cr)))


def train(cfg: PointsConfig, train_set: CloudSet, *, budget_seconds: float | None = None,
          progress: bool = True) -> Trained:
    """``cfg.epochs`` epochs (or whole epochs within ``budget_seconds``, at least one); one
    epoch = every training cloud once, ``batch_size`` clouds per step, fresh views each time."""
    from medcl.contrastive.engine import seed_everything
    from medcl.util.clock import clock

    seed_everything(cfg.seed)
    add_segments(train_set)
    model = build(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    rng = np.random.default_rng(cfg.seed)
    clouds = train_set.clouds
    history: list[dict[str, float]] = []
    start, last = time.perf_counter(), 0.0
    epochs = cfg.epochs if budget_seconds is None else 10**6
    for epoch in range(epochs):
        if budget_seconds is not None and epoch and \
                time.perf_counter() - start + last > budget_seconds:
            break
        t0 = time.perf_counter()
        model.train()
        logs: list[dict[str, float]] = []
        order = rng.permutation(len(clouds))
        bs = min(cfg.batch_size, len(clouds))
        for s in range(0, len(order) - bs + 1, bs):
            batch = make_batch([clouds[i] for i in order[s:s + bs]], cfg, rng)
            loss, log = model(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            logs.append(log)
        row = {"epoch": epoch + 1, **{k: float(np.mean([lg[k] for lg in logs]))
                                      for k in logs[0]}}
        last = time.perf_counter() - t0
        row["seconds"] = round(last, 3)
        history.append(row)
        if progress:
            of = f"/{epochs}" if budget_seconds is None else ""
            values = " ".join(f"{k}={v:.4g}" for k, v in row.items()
                              if k not in ("epoch", "seconds"))
            print(f"{cfg.method} epoch {epoch + 1}{of} {values} (elapsed "
                  f"{clock(time.perf_counter() - start)})", file=sys.stderr, flush=True)
    model.eval()
    return Trained(model, history, time.perf_counter() - start)


# ---------------------------------------------------------------- features and probes


@torch.no_grad()
def embed_clouds(encoder, clouds: list, n_points: int | None, seed: int
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-point features of each cloud at ``n_points`` sampled points (all when ``None``):
    a list of (n, D) arrays and the sampled row indices."""
    rng = np.random.default_rng(seed)
    feats, rows = [], []
    encoder.eval()
    for c in clouds:
        idx = np.arange(len(c.xyz)) if n_points is None else sample_points(c, n_points, rng)
        x = torch.as_tensor(normalise_cloud(c.xyz[idx]))[None]
        feats.append(encoder(x)[0].numpy())
        rows.append(idx)
    return feats, rows


def miou(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean intersection over union over the classes present in ``truth``."""
    ious = []
    for c in np.unique(truth):
        inter = np.sum((truth == c) & (pred == c))
        union = np.sum((truth == c) | (pred == c))
        ious.append(inter / union)
    return float(np.mean(ious))


def _logreg(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y)


def probe(encoder, train_set: CloudSet, test_set: CloudSet, cfg: PointsConfig
          ) -> dict[str, Any]:
    """``{"miou@F": ..., "acc@F": ... per fraction F, "cloud_acc": ... or None, "pred":
    predictions of the first test cloud at 100 %}``."""
    ftr, rtr = embed_clouds(encoder, train_set.clouds, cfg.points, cfg.seed)
    fte, rte = embed_clouds(encoder, test_set.clouds, cfg.points, cfg.seed + 1)
    out: dict[str, Any] = {}
    labelled = all(c.labels is not None for c in train_set.clouds + test_set.clouds)
    if labelled and test_set.clouds:
        x = np.concatenate(ftr)
        y = np.concatenate([c.labels[r] for c, r in zip(train_set.clouds, rtr, strict=True)])
        xt = np.concatenate(fte)
        yt = np.concatenate([c.labels[r] for c, r in zip(test_set.clouds, rte, strict=True)])
        rng = np.random.default_rng(cfg.seed)
        for frac in cfg.fractions:
            pick = rng.permutation(len(y))[: max(2, int(round(frac * len(y))))]
            if len(np.unique(y[pick])) < 2:
                out[f"miou@{frac:g}"] = out[f"acc@{frac:g}"] = float("nan")
                continue
            clf = _logreg(x[pick], y[pick])
            pred = clf.predict(xt)
            out[f"miou@{frac:g}"] = miou(yt, pred)
            out[f"acc@{frac:g}"] = float(np.mean(pred == yt))
            out["pred"] = pred[: len(rte[0])]
        out["view"] = (test_set.clouds[0], rte[0])
    cats = [c.category for c in train_set.clouds + test_set.clouds]
    out["cloud_acc"] = None
    if test_set.clouds and all(c is not None for c in cats) and len(set(cats[:len(ftr)])) > 1:
        pool = [np.r_[f.max(0), f.mean(0)] for f in ftr]
        clf = _logreg(np.stack(pool), np.array(cats[:len(ftr)]))
        pt = np.stack([np.r_[f.max(0), f.mean(0)] for f in fte])
        out["cloud_acc"] = float(np.mean(clf.predict(pt) == np.array(cats[len(ftr):])))
    return out


def probe_rows(scores: dict[str, Any], fractions: list[float]) -> dict[str, float]:
    row = {}
    for f in fractions:
        row[f"miou_{f:g}"] = scores.get(f"miou@{f:g}", float("nan"))
    row["cloud_acc"] = scores.get("cloud_acc")
    return row


def plot_scene(path: Path, cloud, rows: np.ndarray, pred: np.ndarray | None,
               classes: list[str] | None) -> None:
    """Top-down view of a cloud coloured by predicted class and by segment (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medcl.io.atomic import save_figure

    xyz = cloud.xyz[rows]
    panels = []
    if pred is not None:
        panels.append(("predicted class", pred))
    if cloud.segments is not None:
        panels.append(("segment (planes, then DBSCAN)", cloud.segments.ids[rows]))
    if cloud.labels is not None:
        panels.append(("true class", cloud.labels[rows]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (title, values) in zip(axes[0], panels, strict=True):
        ax.scatter(xyz[:, 0], xyz[:, 1], c=values, s=2, cmap="tab20")
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(cloud.name, fontsize=9)
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)


def _probe_table(folder, scores_by: dict[str, dict[str, Any]], cfg: PointsConfig) -> str:
    import pandas as pd

    rows = [{"features": name, **probe_rows(s, cfg.fractions)} for name, s in scores_by.items()]
    return folder.write_table("probes", pd.DataFrame(rows))


def pretrain_run(cfg: PointsConfig, out: Path, *, progress: bool = True) -> Path:
    """``medcl core points pretrain``: ``config.yaml``, ``metrics.csv``, ``model.pt``,
    ``loss.png``, ``probes.csv`` + ``scene.png`` (labelled data) and ``report.md``."""
    from medcl.io import RunFolder

    cfg.check()
    cs = load_clouds(cfg.data, n_scenes=cfg.scenes, seed=cfg.seed)
    check_for_training(cs)
    tr, te = split_clouds(cs, cfg)
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "command": "medcl core points pretrain",
        "data_record": {"source": cs.source, "n_clouds": len(cs.clouds),
                        "classes": cs.classes, "categories": cs.categories}})
    from medcl.contrastive.engine import seed_everything

    seed_everything(cfg.seed)
    initial = build(cfg).encoder
    trained = train(cfg, tr, progress=progress)
    folder.save_model(trained.model.state_dict())
    folder.write_metrics(trained.history)
    from .figures import plot_loss

    plot_loss(folder, trained.history, cfg.method)
    lines = [f"# {cfg.method} on {cs.source}", "",
             f"Backbone {cfg.backbone}, {cfg.points} points per view, {cfg.batch_size} clouds "
             f"per step, temperature {trained.model.tau}, {len(trained.history)} epochs in "
             f"{trained.seconds:.0f} s on {len(tr.clouds)} training clouds; seed {cfg.seed}.",
             "", "![training loss](loss.png)"]
    if te.clouds:
        add_segments(te)
        scores = {"encoder, random init": probe(initial, tr, te, cfg),
                  f"encoder, {cfg.method}": probe(trained.model.encoder, tr, te, cfg)}
        last = scores[f"encoder, {cfg.method}"]
        if any(k.startswith("miou") for k in last) or last["cloud_acc"] is not None:
            table = _probe_table(folder, scores, cfg)
            lines += ["", f"Probes on {len(te.clouds)} held-out clouds (per-point linear probe "
                      "mIoU at each label fraction; cloud accuracy from pooled features):", "",
                      table]
        if "view" in last:
            cloud, rows = last["view"]
            plot_scene(folder.root / "scene.png", cloud, rows, last.get("pred"), cs.classes)
            lines += ["", "![held-out scene](scene.png)"]
    folder.write_report("\n".join(lines) + "\n")
    return folder.report_path


def load_run(run_dir: Path):
    """The config and trained :class:`PointMethod` of a ``points pretrain`` run folder."""
    from medcl.io import RunFolder

    folder = RunFolder(Path(run_dir))
    record = folder.read_config()
    try:
        raw = dict(record["config"])
        cfg = PointsConfig(**raw)
        if record.get("command") != "medcl core points pretrain":
            raise KeyError("command")
    except (KeyError, TypeError) as exc:
        raise RunFolderError("config.yaml was not written by `medcl core points pretrain`",
                             path=folder.config_path,
                             fix="point --model to a points pretrain run folder") from exc
    model = build(cfg)
    try:
        model.load_state_dict(folder.load_model())
    except RuntimeError as exc:
        raise RunFolderError("model.pt does not match config.yaml", path=folder.model_path,
                             fix="retrain into this folder") from exc
    model.eval()
    return cfg, model


def embed_run(run_dir: Path, data: Path, out: Path, per: str = "point") -> int:
    """Features of every cloud of ``data`` (all points) into a parquet/CSV table."""
    import pandas as pd

    from medcl.io.atomic import refuse_overwrite, write_csv

    if per not in ("point", "cloud"):
        raise ConfigError(f"--per {per!r} is unknown", fix="give point or cloud")
    if out.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out} must end in .parquet or .csv", fix="rename it")
    refuse_overwrite(out, data)
    _, model = load_run(run_dir)
    cs = load_clouds(data)
    feats, rows = embed_clouds(model.encoder, cs.clouds, None, 0)
    frames = []
    for c, f, r in zip(cs.clouds, feats, rows, strict=True):
        if per == "cloud":
            z = np.r_[f.max(0), f.mean(0)][None]
            frames.append(pd.DataFrame(z, columns=[f"z_{i}" for i in range(z.shape[1])])
                          .assign(cloud=c.name))
        else:
            df = pd.DataFrame(f, columns=[f"z_{i}" for i in range(f.shape[1])])
            df.insert(0, "point", r)
            df.insert(0, "cloud", c.name)
            frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    if per == "cloud":
        table = table[["cloud", *[c for c in table.columns if c != "cloud"]]]
    if out.suffix == ".csv":
        write_csv(out, table)
    else:
        from medcl.io.atomic import atomic_path

        with atomic_path(out) as tmp:
            table.to_parquet(tmp, index=False)
    return len(table)


def evaluate_run(run_dir: Path, data: str, labels: Path | None, fractions: list[float],
                 out: Path, *, seed: int = 0) -> Path:
    """Probes of a pretrained encoder on labelled clouds: ``probes.csv``, ``report.md``,
    ``scene.png`` in ``out``."""
    from medcl.io import RunFolder

    cfg, model = load_run(run_dir)
    cfg = replace(cfg, fractions=list(fractions), seed=seed, data=str(data))
    cfg.check()
    cs = load_clouds(data, labels_dir=labels, n_scenes=cfg.scenes, seed=seed)
    if cs.classes is None and cs.categories is None:
        raise InputFileError("the clouds have neither per-point labels nor class subfolders",
                             path=data, fix="give --labels DIR of <stem>.npy or label fields")
    if len(cs.clouds) < 2:
        raise InputFileError("evaluation needs at least two clouds (train and test)", path=data,
                             fix="give a folder of clouds")
    tr, te = split_clouds(cs, cfg)
    add_segments(te)
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config(cfg, seed=seed, extra={"command": "medcl core points evaluate",
                                                "model": str(run_dir)})
    scores = probe(model.encoder, tr, te, cfg)
    table = _probe_table(folder, {f"encoder, {cfg.method}": scores}, cfg)
    lines = [f"# {cfg.method} encoder probed on {cs.source}", "",
             f"{len(tr.clouds)} training / {len(te.clouds)} held-out clouds, {cfg.points} "
             "points sampled per cloud; per-point linear probe mIoU at each label fraction, "
             "cloud accuracy from pooled features.", "", table]
    if "view" in scores:
        cloud, rows = scores["view"]
        plot_scene(folder.root / "scene.png", cloud, rows, scores.get("pred"), cs.classes)
        lines += ["", "![held-out scene](scene.png)"]
    folder.write_report("\n".join(lines) + "\n")
    return folder.report_path


def config_dict(cfg: PointsConfig) -> dict[str, Any]:
    return asdict(cfg)
