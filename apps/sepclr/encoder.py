"""``sepclr:RUN[:common|:salient]`` for the ``medcl.encoders`` entry points: one encoder of a
``medcl sepclr fit`` run as a low-level-vision-probe encoder (``medcl core hvs run``)."""

from __future__ import annotations

from torch import nn

SPACES = ("common", "salient")


def load_encoder(spec: str) -> nn.Module:
    """The common (default) or salient encoder of run folder ``spec`` (``RUN`` or
    ``RUN:salient``), taking ``(N, 3, H, W)`` display values in [0, 1] (resized to the run's
    image size, luma for a grey run) and returning that representation ``(N, D)``."""
    from medcl.contrastive.hvs.adapter import DisplayAdapter

    from .train import load_run

    run, space = spec, "common"
    head, _, tail = spec.rpartition(":")
    if head and tail in SPACES:
        run, space = head, tail
    cfg, model = load_run(run)
    index = SPACES.index(space)

    def features(net: nn.Module, x):
        if hasattr(net, "represent"):
            return net.represent(x)[index]
        return net.embed(x)[index]  # the contrastive VAE: posterior means

    return DisplayAdapter(model, channels=int(cfg.channels), size=int(cfg.image_size),
                          forward_fn=features).eval()
