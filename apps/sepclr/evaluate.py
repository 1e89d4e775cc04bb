"""Evaluation of common / salient representations: linear probes per attribute, space and group,
a leakage summary, and t-SNE pictures (the protocol of Louiset et al. 2024, sec. 5: logistic
regression of each attribute from each space).

Two probe tables, each labelled where it is written:

- :func:`authors_probe_table`, the probes as the authors report them (their
  ``*/evaluation_script.py``): scikit-learn's default ``LogisticRegression()`` on the raw codes,
  target images only, fit on the training images and scored on a fixed test split, accuracy or
  balanced accuracy (per data card);
- :func:`probe_table` (with :func:`leakage_summary`), ours: standardised codes, a
  logistic regression run to convergence, both groups, wanted vs leaked information.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

SPACES = ("common", "salient")


@torch.no_grad()
def represent(model: nn.Module, images: Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Common and salient representations of ``images`` (N, C, H, W): two (N, D) arrays."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPACES}
    try:
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device)
            if hasattr(model, "represent"):
                common, salient = model.represent(x)
            else:  # the contrastive VAE: posterior means
                common, salient = model.embed(x)
            parts["common"].append(common.cpu().numpy())
            parts["salient"].append(salient.cpu().numpy())
    finally:
        model.train(was_training)
    return {s: np.concatenate(parts[s]) for s in SPACES}


def attribute_roles(attributes: pd.DataFrame, is_target: np.ndarray) -> dict[str, str]:
    """``salient`` for an attribute with a single value (or none) in the background group — it
    exists only in the target —, ``common`` for one that varies in both groups.

    The columns ``file`` and ``group`` and display columns ending in ``_name`` are not probed.
    """
    roles = {}
    for col in attributes.columns:
        if col in ("file", "group") or col.endswith("_name"):
            continue
        values = attributes[col][~is_target].dropna()
        roles[col] = "salient" if values.nunique() <= 1 else "common"
    return roles


def majority_rate(labels: np.ndarray) -> float:
    """Chance accuracy of a probe: the share of the most frequent class in ``labels`` (N,)."""
    return float(pd.Series(labels).value_counts(normalize=True).iloc[0])


def target_chance(attributes: pd.DataFrame, is_target: np.ndarray,
                  train_idx: np.ndarray) -> dict[str, float]:
    """Chance accuracy of each attribute probed on the held-out target images (those not in
    ``train_idx``), as
    :func:`probe_table` records it (attributes it does not probe there are left out).

    It depends on the data and the split only, so a report can state it before any method is
    trained (``medcl sepclr benchmark`` rebuilds its report after each method)."""
    train_mask = np.zeros(len(is_target), bool)
    train_mask[train_idx] = True
    tr, te = is_target & train_mask, is_target & ~train_mask
    out = {}
    for attr in attribute_roles(attributes, is_target):
        y = attributes[attr].to_numpy()
        if len(np.unique(y[tr])) >= 2 and te.sum() > 0:
            out[attr] = majority_rate(y[te])
    return out


def probe_table(reps: dict[str, np.ndarray], attributes: pd.DataFrame, is_target: np.ndarray,
                train_idx: np.ndarray, test_idx: np.ndarray) -> pd.DataFrame:
    """Logistic-regression accuracy of every attribute from every space, per group.

    Probes are fit on ``train_idx`` rows and scored on ``test_idx`` rows of the same group;
    ``chance`` is the majority-class rate of the test rows. Groups where an attribute has fewer
    than two classes are skipped.
    """
    from medcl.contrastive.probe import linear_probe_accuracy

    roles = attribute_roles(attributes, is_target)
    train_mask = np.zeros(len(is_target), bool)
    train_mask[train_idx] = True
    rows = []
    for attr, role in roles.items():
        y = attributes[attr].to_numpy()
        for group, in_group in (("target", is_target), ("background", ~is_target)):
            tr, te = in_group & train_mask, in_group & ~train_mask
            if len(np.unique(y[tr])) < 2 or te.sum() == 0:
                continue
            chance = majority_rate(y[te])
            for space in SPACES:
                acc = linear_probe_accuracy(reps[space][tr], y[tr], reps[space][te], y[te])
                rows.append(dict(attribute=attr, role=role, group=group, space=space,
                                 accuracy=acc, chance=float(chance), n_train=int(tr.sum()),
                                 n_test=int(te.sum())))
    return pd.DataFrame(rows)


def authors_probe_table(reps: dict[str, np.ndarray], attributes: pd.DataFrame,
                        is_target: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray,
                        metric: str = "accuracy") -> pd.DataFrame:
    """The authors' linear probes: each attribute from each space's code, on target images.

    As ``evaluate_representations`` in the authors' ``*/evaluation_script.py``: a default
    ``sklearn.linear_model.LogisticRegression()`` (L2, C = 1, lbfgs, 100 iterations; their
    convergence warnings silenced as they do) fit on the codes of the training target images
    and scored on the test target images, with ``metric`` ``accuracy`` (CIFAR-10 + MNIST) or
    ``balanced_accuracy`` (CelebA, CheXpert, ODIR). Their regressions of age (mean absolute
    error) and their group probe on the projector output are not reproduced.

    Returns one row per (attribute, space): ``attribute, role, space, score, metric, chance``
    (majority rate for accuracy, ``1 / n_classes`` for balanced accuracy), ``n_train, n_test``.
    Attributes with fewer than two classes in the training target images are skipped.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    if metric not in ("accuracy", "balanced_accuracy"):
        raise ValueError(f"metric must be accuracy or balanced_accuracy, got {metric!r}")
    train_mask = np.zeros(len(is_target), bool)
    train_mask[train_idx] = True
    test_mask = np.zeros(len(is_target), bool)
    test_mask[test_idx] = True
    tr, te = is_target & train_mask, is_target & test_mask
    rows = []
    for attr, role in attribute_roles(attributes, is_target).items():
        y = attributes[attr].to_numpy()
        if len(np.unique(y[tr])) < 2 or te.sum() == 0:
            continue
        chance = (majority_rate(y[te]) if metric == "accuracy"
                  else 1.0 / len(np.unique(y[te])))
        for space in SPACES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf = LogisticRegression().fit(reps[space][tr], y[tr])
            pred = clf.predict(reps[space][te])
            score = (float(np.mean(pred == y[te])) if metric == "accuracy"
                     else float(balanced_accuracy_score(y[te], pred)))
            rows.append(dict(attribute=attr, role=role, space=space, score=score,
                             metric=metric, chance=float(chance), n_train=int(tr.sum()),
                             n_test=int(te.sum())))
    return pd.DataFrame(rows)


def leakage_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Wanted vs leaked information, on target images.

    ``wanted``: a salient attribute from the salient space, a common attribute from the common
    space (higher is better). ``leaked``: a salient attribute from the common space, a common
    attribute from the salient space (lower is better, chance is the floor).
    """
    target = table[table.group == "target"]
    rows = []
    for (attr, role), sub in target.groupby(["attribute", "role"], sort=False):
        acc = dict(zip(sub.space, sub.accuracy, strict=True))
        own, other = ("salient", "common") if role == "salient" else ("common", "salient")
        rows.append(dict(attribute=attr, role=role, wanted=acc.get(own), leaked=acc.get(other),
                         chance=float(sub.chance.iloc[0])))
    return pd.DataFrame(rows)


def tsne_figure(reps: dict[str, np.ndarray], attributes: pd.DataFrame, is_target: np.ndarray,
                max_points: int = 1000, seed: int = 0):
    """A grid of t-SNE maps: one row per space, one column per attribute (plus group)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(is_target), min(max_points, len(is_target)), replace=False))
    roles = attribute_roles(attributes, is_target)
    colourings = {"group": np.where(is_target, 1, 0)} | {
        a: attributes[a].to_numpy() for a in roles}
    fig, axes = plt.subplots(len(SPACES), len(colourings),
                             figsize=(3.2 * len(colourings), 3.2 * len(SPACES)), squeeze=False)
    for r, space in enumerate(SPACES):
        z = reps[space][idx]
        xy = TSNE(n_components=2, init="pca", random_state=seed,
                  perplexity=min(30.0, max(5.0, len(idx) / 10))).fit_transform(z)
        for c, (name, values) in enumerate(colourings.items()):
            ax = axes[r, c]
            codes, _ = pd.factorize(pd.Series(values[idx]).astype(str), sort=True)
            ax.scatter(xy[:, 0], xy[:, 1], c=codes, s=4, cmap="tab10")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{space} space, colour = {name}", fontsize=9)
    fig.tight_layout()
    return fig
