"""Training recipe of DB-SAM on the core engine (Qin et al., MICCAI 2024, arXiv:2410.04172).

Per (slice, label) samples with a jittered box prompt; MONAI ``DiceCELoss(sigmoid=True,
squared_pred=True)`` on the low-resolution mask logits (S/4 x S/4, e.g. 256² at 1024² input);
AdamW (lr 1e-4, weight decay 0.01) over the trainable parameters only (adapters, conv branch,
cross-attention, fusion, neck, prompt encoder, mask decoder); linear warm-up for
``warmup_epochs`` then polynomial decay, stepped per optimiser step. Lightning Fabric (through
:class:`medcl.contrastive.engine.Engine`) puts it on CPU or GPU(s), with AMP on CUDA.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from .config import DBSAMConfig
from .data import SliceDataset


def warmup_poly(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                power: float = 0.9) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps`` then ``(1 - t)^power`` decay to 0 at ``total_steps``.

    ``lr(step) = base * (step + 1) / warmup_steps`` during warm-up, then
    ``base * (1 - (step - warmup_steps) / (total_steps - warmup_steps)) ** power``.
    """
    warmup_steps = max(0, min(warmup_steps, total_steps - 1))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        return max(0.0, 1.0 - (step - warmup_steps) / span) ** power

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_loss() -> nn.Module:
    """DiceCE on sigmoid probabilities with squared denominators (the paper's loss)."""
    from monai.losses import DiceCELoss

    return DiceCELoss(sigmoid=True, squared_pred=True, reduction="mean")


def train_model(model: nn.Module, dataset: SliceDataset, cfg: DBSAMConfig,
                run_dir: Path | None, *, progress: bool = True,
                resume: bool = False) -> tuple[nn.Module, list[dict]]:
    """Fit ``model`` (DB-SAM, or vanilla SAM's prompt encoder + decoder) on ``dataset``.

    Returns the trained model (on CPU, eval mode) and the engine's per-epoch history.
    """
    from medcl.contrastive.engine import Engine, EngineConfig

    if len(dataset) == 0:
        raise ValueError("no training sample: no slice has a label with at least "
                         f"{cfg.min_pixels} pixels")
    loader = DataLoader(dataset, batch_size=min(cfg.batch_size, len(dataset)), shuffle=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(loader)
    scheduler = warmup_poly(optimizer, cfg.warmup_epochs * steps_per_epoch,
                            cfg.epochs * steps_per_epoch, cfg.poly_power)
    loss_fn = make_loss()

    def step(net: nn.Module, batch) -> dict[str, torch.Tensor]:
        images, boxes, target = batch
        logits = net(images, boxes)
        return {"loss": loss_fn(logits.float(), target)}

    engine = Engine(EngineConfig(max_epochs=cfg.epochs, seed=cfg.seed, progress=progress,
                                 accelerator=cfg.accelerator, resume=resume,
                                 grad_clip_norm=1.0), run_dir)
    model = engine.fit(model, optimizer, loader, step, scheduler=scheduler,
                       scheduler_interval="step")
    return model.cpu().eval(), engine.history
