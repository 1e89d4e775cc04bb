"""Figures shared by the ``medcl core`` commands' run folders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def plot_loss(folder: Any, history: list[dict[str, Any]], title: str,
              keys: Sequence[str] = ("loss",)) -> None:
    """``loss.png`` in ``folder`` (a :class:`medcl.io.RunFolder`): each of ``keys`` present in
    the per-epoch ``history`` against the epoch (a legend when there are several)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [k for k in keys if history and k in history[0]]
    fig, ax = plt.subplots(figsize=(5, 3))
    for key in present:
        ax.plot([r["epoch"] for r in history], [r[key] for r in history], marker="o", ms=3,
                label=key)
    ax.set_xlabel("epoch")
    if len(present) > 1:
        ax.legend()
    else:
        ax.set_ylabel("loss")
    ax.set_title(title)
    fig.tight_layout()
    folder.save_figure("loss", fig)
    plt.close(fig)
