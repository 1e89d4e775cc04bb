"""One figure per test of ``medcl core hvs run``: the model's thresholds (or matches) against
the human reference (PNG, matplotlib Agg)."""

from __future__ import annotations

import numpy as np


def test_figure(result, encoder: str):
    """A matplotlib figure of one :class:`medcl.contrastive.hvs.battery.TestResult`.

    Detection: sensitivity (1 / threshold contrast) against the condition, log-log; masking:
    test threshold against mask contrast; matching: matched contrast against test frequency,
    one line per reference contrast (human dashed, model solid).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    if result.kind == "matching":
        refs = result.extra["ref_contrast"]
        colours = plt.cm.viridis(np.linspace(0, 0.9, len(np.unique(refs))))
        for colour, ref in zip(colours, np.unique(refs), strict=True):
            sel = refs == ref
            ax.plot(result.x[sel], result.human[sel], "--", color=colour)
            ax.plot(result.x[sel], result.model[sel], "o-", color=colour, ms=3,
                    label=f"ref {ref:.3g}")
        ax.set_ylabel("matched contrast (solid: model, dashed: human)")
        ax.legend(fontsize=6, ncol=2)
    elif result.kind == "detection":
        ax.plot(result.x, 1.0 / result.human, "k--", label=f"human: {result.reference}")
        ax.plot(result.x, 1.0 / result.model, "o-", label="model (criterion at median S)")
        ax.set_ylabel("sensitivity (1 / threshold contrast)")
        ax.legend(fontsize=7)
    else:
        ax.plot(result.x, result.human, "k--", label=f"human: {result.reference}")
        ax.plot(result.x, result.model, "o-", label="model (criterion at median S)")
        ax.set_ylabel("test threshold contrast")
        ax.legend(fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(result.x_name)
    ax.set_title(f"{result.title}\n{encoder}: Spearman {result.spearman:.3f}, "
                 f"RMSE(log10) {result.rmse:.3f}", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig
