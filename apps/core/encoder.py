"""``core:RUN`` for the ``medcl.encoders`` entry points: the backbone of a ``medcl core image
pretrain`` run as a low-level-vision-probe encoder (``medcl core hvs run``)."""

from __future__ import annotations

from pathlib import Path

from torch import nn


def load_encoder(spec: str) -> nn.Module:
    """The trained backbone of run folder ``spec``, taking ``(N, 3, H, W)`` display values in
    [0, 1] and returning its pooled features ``(N, F)``.

    The backbones are convolutional with global pooling, so the stimuli are fed at their own
    size (the paper feeds 224 px without resizing); a grey run sees the Rec. 709 luma.
    Loading goes through :func:`medcl.core.train.load_run` (``weights_only=True``; a clear
    error for a folder of another command or a mismatching ``model.pt``).
    """
    from medcl.contrastive.hvs.adapter import DisplayAdapter

    from .train import load_run

    _, info, encoder = load_run(Path(spec))
    return DisplayAdapter(encoder, channels=int(info["channels"])).eval()
