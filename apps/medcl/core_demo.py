"""The core demo: SimCLR on scikit-learn's handwritten digits, trained through the engine.

Data: ``sklearn.datasets.load_digits`` (1797 8x8 images, 10 classes; card ``sklearn_digits``),
split 70/30 stratified with the run's seed. The encoder is pretrained with NT-Xent (Chen et al.
2020) on two augmented views of the training images, without labels. Evaluation: kNN and
linear-probe accuracy of the frozen encoder's features on the held-out 30%, next to the same
encoder at its random initialisation and to raw pixels.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from medcl.contrastive.backbones import SmallCNN


@dataclass
class CoreDemoConfig:
    """Hyper-parameters of the core demo (tuned for about a minute on 2 CPU cores)."""

    epochs: int = 60
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.5
    proj_dim: int = 64
    width: int = 16
    test_size: float = 0.3
    knn_k: int = 10
    few_label_draws: int = 10


class TwoViews(Dataset):
    """Two independently augmented views of each image (per-sample torchvision transforms)."""

    def __init__(self, images: torch.Tensor) -> None:
        from torchvision.transforms import v2

        self.images = images
        self.augment = v2.Compose([
            v2.RandomAffine(degrees=15, translate=(0.125, 0.125), scale=(0.8, 1.1), shear=10),
            v2.RandomErasing(p=0.5, scale=(0.05, 0.15), value=0.0),
            v2.GaussianNoise(sigma=0.1),
        ])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[i]
        return self.augment(x), self.augment(x)


def load_digits_split(test_size: float, seed: int):
    """(x_train, y_train, x_test, y_test) with images scaled to [0, 1], shape (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = digits.target
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y,
                                      random_state=seed)
    return x[idx_tr], y[idx_tr], x[idx_te], y[idx_te]


def probe_features(z_tr, y_tr, z_te, y_te, cfg: CoreDemoConfig, seed: int) -> dict[str, float]:
    """All-label kNN / linear accuracy and 1- and 5-label-per-class accuracy (mean of draws)."""
    from medcl.contrastive.probe import evaluate_split, few_label_accuracy

    res = evaluate_split(z_tr, y_tr, z_te, y_te, k=cfg.knn_k)
    row = {"knn": res.knn, "linear": res.linear}
    for n in (1, 5):
        few = few_label_accuracy(z_tr, y_tr, z_te, y_te, per_class=n,
                                 draws=cfg.few_label_draws, seed=seed)
        row[f"{n}-shot 1-NN"] = few["knn1_mean"]
        row[f"{n}-shot linear"] = few["linear_mean"]
    return row


def pretrain(x_tr: torch.Tensor, cfg: CoreDemoConfig, folder, *, seed: int,
             progress: bool = True) -> tuple[SmallCNN, SmallCNN, list[dict], float]:
    """NT-Xent pretraining (Chen et al. 2020) of the core's small CNN
    (:class:`~medcl.contrastive.backbones.SmallCNN`) on two views of
    ``x_tr`` (N, 1, 8, 8) through the engine, logging into ``folder`` (a ``RunFolder``).

    Returns
    -------
    encoder, initial : SmallCNN
        The trained encoder and a copy of it at its random initialisation.
    history : list of dict
        The engine's per-epoch rows (also in ``metrics.csv``).
    seconds : float
        Training wall time.
    """
    from medcl.contrastive.engine import Engine, EngineConfig
    from medcl.contrastive.heads import SimCLRHead
    from medcl.contrastive.losses import NTXentLoss

    encoder = SmallCNN(1, cfg.width)
    initial = copy.deepcopy(encoder)
    model = nn.Sequential(encoder, SimCLRHead(encoder.out_dim, encoder.out_dim, cfg.proj_dim))
    loss_fn = NTXentLoss(cfg.temperature)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loader = DataLoader(TwoViews(x_tr), batch_size=cfg.batch_size, shuffle=True, drop_last=True)

    def step(net, batch):
        v0, v1 = batch
        z = net(torch.cat([v0, v1]))
        return loss_fn(z[: len(v0)], z[len(v0):])

    engine = Engine(EngineConfig(max_epochs=cfg.epochs, accelerator="cpu", seed=seed,
                                 progress=progress, checkpoint_every=0), folder.root)
    start = time.perf_counter()
    engine.fit(model, opt, loader, step)
    seconds = time.perf_counter() - start
    folder.save_model(model.state_dict())
    return encoder, initial, engine.history, seconds


def run_core_demo(run_dir: Path, *, epochs: int | None = None, seed: int = 0,
                  config: CoreDemoConfig | None = None, progress: bool = True) -> str:
    """Train and evaluate into ``run_dir``; return the report's Markdown section.

    ``run_dir`` gets ``config.yaml``, ``metrics.csv`` (the per-epoch training log),
    ``model.pt``, ``probes.csv`` (accuracy of each probe on each set of features),
    ``loss.png`` and ``report.md``.
    """
    import pandas as pd

    from medcl.contrastive.engine import seed_everything
    from medcl.contrastive.probe import embed
    from medcl.io import RunFolder

    cfg = copy.deepcopy(config) if config is not None else CoreDemoConfig()
    if epochs is not None:
        cfg.epochs = epochs
    folder = RunFolder.create(run_dir)
    folder.write_config(asdict(cfg), seed=seed, extra={"dataset": "sklearn_digits"})
    seed_everything(seed)
    x_tr, y_tr, x_te, y_te = load_digits_split(cfg.test_size, seed)
    encoder, initial, history, train_s = pretrain(x_tr, cfg, folder, seed=seed,
                                                  progress=progress)

    features = {
        "raw pixels (64)": (x_tr.flatten(1).numpy(), x_te.flatten(1).numpy()),
        "CNN, random init": (embed(initial, x_tr), embed(initial, x_te)),
        f"CNN, SimCLR {cfg.epochs} epochs": (embed(encoder, x_tr), embed(encoder, x_te)),
    }
    rows = [{"features": name, **probe_features(z_tr, y_tr, z_te, y_te, cfg, seed)}
            for name, (z_tr, z_te) in features.items()]
    table = folder.write_table("probes", pd.DataFrame(rows))
    _plot_loss(folder, history)
    n_params = sum(p.numel() for p in encoder.parameters())
    section = (
        "## core: SimCLR on digits\n\n"
        f"NT-Xent (tau={cfg.temperature}) pretraining of a {n_params:,}-parameter CNN on "
        f"{len(x_tr)} unlabelled training images for {cfg.epochs} epochs "
        f"({train_s:.0f} s on CPU); probes fit on those images' labels and score the "
        f"{len(x_te)} held-out images: kNN (k={cfg.knn_k}, cosine) and logistic regression on "
        f"all {len(x_tr)} labels, then 1-NN and logistic regression from 1 or 5 labels per "
        f"class (mean of {cfg.few_label_draws} draws). Accuracy:\n\n"
        f"{table}\n\n![training loss](loss.png)\n"
    )
    folder.write_report(section)
    return section


def _plot_loss(folder, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([r["epoch"] for r in history], [r["loss"] for r in history], marker="o", ms=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("NT-Xent loss")
    ax.set_title("SimCLR on digits")
    fig.tight_layout()
    folder.save_figure("loss", fig)
    plt.close(fig)
