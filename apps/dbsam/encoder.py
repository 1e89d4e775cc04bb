"""``dbsam:RUN`` for the ``medcl.encoders`` entry points: the image encoder of a ``medcl dbsam
train`` run as a low-level-vision-probe encoder (``medcl core hvs run``)."""

from __future__ import annotations

from torch import nn


def load_encoder(spec: str) -> nn.Module:
    """DB-SAM's image embedding ``(N, 256, S/16, S/16)`` of run folder ``spec``, taking
    ``(N, 3, H, W)`` display values in [0, 1]: resized to the run's input side ``S`` and
    normalised with SAM's pixel mean and std (0-255 units), as the app's preprocessing does
    (without its zero padding: the stimuli are square); a LiteMedSAM run takes the [0, 1]
    values as they are (its preprocessing min-max scales, which [0, 1] stimuli already are
    up to their own range)."""
    from pathlib import Path

    from medcl.contrastive.hvs.adapter import DisplayAdapter

    from .harness import load_run
    from .sam import PIXEL_MEAN, PIXEL_STD

    _, model = load_run(Path(spec))
    if getattr(model, "style", "sam") == "litemedsam":  # LiteMedSAM takes [0, 1] as it is
        return DisplayAdapter(model, size=int(model.image_size), scale=1.0, mean=(0.0, 0.0, 0.0),
                              std=(1.0, 1.0, 1.0), forward_fn=lambda net, x: net.embed(x)).eval()
    return DisplayAdapter(model, size=int(model.image_size), scale=255.0, mean=PIXEL_MEAN,
                          std=PIXEL_STD, forward_fn=lambda net, x: net.embed(x)).eval()
