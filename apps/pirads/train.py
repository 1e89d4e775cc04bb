"""Two-stage training of the dual-path network on the core engine (Das et al. 2023,
arXiv:2309.12970): stage 1 supervised (Dice + CE per branch weighted toward its zone group, the
fused output, gland mask and signed distance); stage 2 co-training, which keeps every supervised
term on the labelled volumes and adds the branches' consistency on labelled and unlabelled
volumes with a ramped-up weight. The single-path MONAI baseline is trained with the same
budget and the same Dice + CE settings.

What a run does around the paper's losses (their training code is not public; the same lab's
UATS code, github suhitaghosh10/UATS, is followed where it shows a choice):

- cases are cut around the labelled gland at load time, with ``cfg.shift`` voxels of margin
  per side, and every training sample is a ``cfg.crop`` box at a random offset in that margin
  (UATS translates by up to +-4 mm in-plane and +-6 mm through-plane: the default 8, 8, 2
  voxels); validation uses the centred box;
- the signed distance target of each case is computed once, when the training set is built,
  and moves with the image through the crop and the augmentation
  (:func:`medcl.pirads.transforms.augment_transforms`; UATS likewise transforms distance maps
  with the image);
- ``cfg.val_fraction`` of the labelled cases are held out; after each epoch the fused
  prediction's Dice per zone on them goes into ``metrics.csv`` (``val_dice_pz`` ...,
  ``val_dice`` their mean), the best epoch's weights are kept as ``model.pt`` and the last
  epoch's as ``last.pt``, per stage; ``cfg.patience`` stops a stage early; the learning rate
  follows a cosine schedule (Adam; the paper's optimiser settings are not published).
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .config import PiradsConfig
from .labels import IDENTITY, LabelMap
from .zones import N_CLASSES, ZONES

SPLIT_NAME = "split.json"
"""Positions (in the loaded case order) of the training and validation cases of a run."""


def list_cases(images: Path, labels: Path | None = None) -> list[tuple[str, Path, Path | None]]:
    """(case, image, label) triples of an nnU-Net/MSD-style pair of folders of T2 volumes."""
    from medcl.io.cases import list_cases as _list

    return _list(images, labels, what="T2 volume")


def patch_size(cfg: PiradsConfig) -> tuple[int, int, int]:
    """Spatial size of a loaded case: ``crop + 2 * shift`` per axis."""
    return tuple(int(c) + 2 * int(s) for c, s in zip(cfg.crop, cfg.shift, strict=True))


def load_cases(cfg: PiradsConfig, cases, *, with_labels: bool,
               label_map: LabelMap = IDENTITY) -> tuple[Tensor, Tensor | None]:
    """Preprocessed images (N, 1, *P) and zone labels (N, 1, *P), ``P = crop + 2 * shift``.

    Each file is read once, by :func:`medcl.pirads.labels.read_case`, which checks it (corrupt,
    4-D without a channel, NaN, label geometry, codes ``label_map`` does not know: an error
    naming the file), and the volumes are preprocessed as read (whole field of view at
    ``cfg.spacing``, intensities scaled). The box kept is centred on the labelled gland's
    centroid (the field of view's centre for unlabelled cases, or a label map without gland),
    zero-padded where it leaves the scan: a gland off the centre of a large field of view is
    no longer cut, as a centre crop would. Labels are remapped with ``label_map`` (the
    dataset's codes -> ours). A bad case stops the run before training starts.
    """
    from monai.data import MetaTensor

    from .labels import read_case
    from .transforms import crop_around, gland_centre, preprocess, preprocess_transforms

    def plain(x) -> Tensor:
        return x.as_tensor() if isinstance(x, MetaTensor) else torch.as_tensor(x)

    size = patch_size(cfg)
    transforms = preprocess_transforms(spacing=cfg.spacing, crop=None, with_label=with_labels)
    images, labels = [], []
    for _, image, label in cases:
        vol, lab = read_case(image, label if with_labels else None, channel=cfg.channel,
                             label_map=label_map)
        data = preprocess(vol, lab, transforms=transforms)
        img = plain(data["image"]).float()
        if with_labels:
            # nearest-neighbour resampling keeps the source codes: the map applies unchanged
            zones = label_map.apply(plain(data["label"]).long())
            centre = gland_centre(zones)
            labels.append(crop_around(zones, centre, size))
        else:
            centre = tuple(int(n) // 2 for n in img.shape[1:])
        images.append(crop_around(img, centre, size))
    return torch.stack(images), (torch.stack(labels) if with_labels else None)


def build_model(cfg: PiradsConfig, kind: str = "dual") -> nn.Module:
    """The dual-path network (``"dual"``) or the single-path baseline (anything else)."""
    from .model import DualPathNet, SinglePathNet

    if kind == "dual":
        return DualPathNet(1, N_CLASSES, filters=cfg.filters, groups=tuple(map(tuple, cfg.groups)))
    return SinglePathNet(1, N_CLASSES, filters=cfg.filters)


# --------------------------------------------------------------------------- samples


def _margins(cfg: PiradsConfig, images: Tensor) -> tuple[int, int, int]:
    extra = [int(n) - int(c) for n, c in zip(images.shape[-3:], cfg.crop, strict=True)]
    if min(extra) < 0:
        raise ValueError(f"cases of spatial size {tuple(images.shape[-3:])} are smaller than "
                         f"the crop {tuple(cfg.crop)}; load them with load_cases(cfg, ...)")
    return tuple(e // 2 for e in extra)


def centre_crops(cfg: PiradsConfig, volumes: Tensor) -> Tensor:
    """The centred ``cfg.crop`` box of loaded cases (``(N, C, *P)`` -> ``(N, C, *crop)``):
    gland-centred for labelled cases, as validation and :func:`train_single` evaluation use."""
    m = _margins(cfg, volumes)
    return volumes[(..., *(slice(a, a + c) for a, c in zip(m, cfg.crop, strict=True)))]


def distance_targets(cfg: PiradsConfig, labels: Tensor) -> Tensor:
    """Signed distance (mm, :func:`medcl.pirads.losses.signed_distance`) of each case's gland,
    computed once per case on the loaded box; rows without a label (all ``< 0``) give zeros."""
    from .losses import signed_distance

    return signed_distance(labels, cfg.spacing)


class ZoneCrops(Dataset):
    """Training samples: a ``cfg.crop`` box at a random offset of at most ``cfg.shift`` voxels
    from the loaded case's centre (the gland's), augmented when ``cfg.augment``.

    Random draws come from PyTorch's global generator, which the engine reseeds at every epoch,
    so a run (and a resumed run) is reproducible; the MONAI transforms are reseeded from it per
    sample.

    Parameters
    ----------
    cfg : PiradsConfig
        Crop, shift, spacing and ``augment``.
    images, labels : torch.Tensor, shape (N, 1, *P)
        Loaded cases (:func:`load_cases`); labels ``-1`` mark unlabelled cases.
    sdf : torch.Tensor, shape (N, 1, *P), optional
        Cached signed distances (:func:`distance_targets`); samples are then
        ``(image, label, sdf)``, else ``(image, label)``.
    """

    def __init__(self, cfg: PiradsConfig, images: Tensor, labels: Tensor,
                 sdf: Tensor | None = None) -> None:
        if images.shape[0] != labels.shape[0] or (sdf is not None and sdf.shape != labels.shape):
            raise ValueError("images, labels and sdf need one row per case of one shape")
        self.images, self.labels, self.sdf = images, labels, sdf
        self.crop = tuple(int(c) for c in cfg.crop)
        self.margins = _margins(cfg, images)
        self.augment = None
        if cfg.augment:
            from .transforms import augment_transforms

            keys = ("image", "label", "sdf") if sdf is not None else ("image", "label")
            self.augment = augment_transforms(spacing=cfg.spacing, keys=keys)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[Tensor, ...]:
        start = [int(torch.randint(0, 2 * m + 1, ())) for m in self.margins]
        box = (slice(None), *(slice(s, s + c) for s, c in zip(start, self.crop, strict=True)))
        item = {"image": self.images[i][box], "label": self.labels[i][box]}
        if self.sdf is not None:
            item["sdf"] = self.sdf[i][box]
        if self.augment is not None:
            self.augment.set_random_state(int(torch.randint(0, 2**31 - 1, ())))
            item = self.augment(item)
        out = [torch.as_tensor(item["image"]).float().contiguous(),
               torch.as_tensor(item["label"]).contiguous()]
        if self.sdf is not None:
            out.append(torch.as_tensor(item["sdf"]).float().contiguous())
        return tuple(t.as_tensor() if hasattr(t, "as_tensor") else t for t in out)


# --------------------------------------------------------------------------- validation


def split_cases(cfg: PiradsConfig, n: int) -> tuple[list[int], list[int]]:
    """(training, validation) positions of ``n`` labelled cases, drawn from ``cfg.seed``.

    ``round(cfg.val_fraction * n)`` cases, at least one when ``val_fraction > 0``, and always
    at least one training case: with fewer than two cases nothing is held out.
    """
    n_val = 0
    if cfg.val_fraction > 0 and n >= 2:
        n_val = min(max(1, round(cfg.val_fraction * n)), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    return sorted(order[n_val:]), sorted(order[:n_val])


def zone_dice(model: nn.Module, images: Tensor, labels: Tensor,
              batch_size: int = 2) -> dict[str, float]:
    """Dice per zone of the fused prediction: ``val_dice_<zone>`` (mean over the cases where
    the zone is labelled or predicted; NaN when none is) and ``val_dice``, their mean."""
    device = next(model.parameters()).device
    scores: dict[int, list[float]] = {z: [] for z in ZONES}
    with torch.no_grad():
        for lo in range(0, len(images), batch_size):
            x = images[lo:lo + batch_size].to(device)
            pred = model(x)["fused"].argmax(1).cpu()
            y = labels[lo:lo + batch_size, 0]
            for p, t in zip(pred, y, strict=True):
                for z in ZONES:
                    pz, tz = p == z, t == z
                    total = int(pz.sum()) + int(tz.sum())
                    if total:
                        scores[z].append(2.0 * int((pz & tz).sum()) / total)
    out = {f"val_dice_{name.lower()}": (sum(v) / len(v) if v else math.nan)
           for z, name in ZONES.items() for v in [scores[z]]}
    found = [v for v in out.values() if not math.isnan(v)]
    out["val_dice"] = sum(found) / len(found) if found else math.nan
    return out


class _EarlyStop(Exception):
    pass


class _Selection:
    """Best epoch by validation Dice (weights kept on the CPU) and early stopping."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best, self.best_epoch, self.epoch, self.stale = -math.inf, 0, 0, 0
        self.state: dict[str, Tensor] | None = None
        self.stop = False

    def update(self, model: nn.Module, score: float) -> None:
        self.epoch += 1
        if math.isfinite(score) and score > self.best:
            self.best, self.best_epoch, self.stale = score, self.epoch, 0
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1
            self.stop = self.patience > 0 and self.stale >= self.patience


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _fit(cfg: PiradsConfig, model: nn.Module, dataset: Dataset, step, epochs: int,
         run_dir: Path | None, progress: bool, seed: int, *, name: str,
         val: tuple[Tensor, Tensor] | None = None,
         on_first_epoch: Callable[[float], str] | None = None) -> tuple[nn.Module, list]:
    """Train on the engine with a cosine schedule; validate, select, stop early, time.

    Returns the model holding the best validation epoch's weights (the last epoch's without
    validation) and the engine's history. With a ``run_dir``, ``model.pt`` (best) and
    ``last.pt`` (last epoch) are written there besides the engine's files.
    """
    from medcl.contrastive.engine import Engine, EngineConfig
    from medcl.io.atomic import save_torch
    from medcl.util.clock import clock

    engine = Engine(EngineConfig(max_epochs=epochs, seed=seed, progress=progress), run_dir)
    loader = DataLoader(dataset, batch_size=min(cfg.batch_size, len(dataset)), shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs),
                                                           eta_min=cfg.lr / 100)
    selection = _Selection(cfg.patience if val is not None else 0)
    started = time.perf_counter()

    first = [True]

    def val_fn(net: nn.Module) -> dict[str, float]:
        out = zone_dice(net, *val, batch_size=cfg.batch_size) if val is not None else {}
        if val is not None:
            selection.update(net, out["val_dice"])
        if first[0]:
            first[0] = False
            if on_first_epoch is not None:
                _say(progress, on_first_epoch(time.perf_counter() - started))
        return out

    def guarded(net, batch):
        if selection.stop:  # the previous epoch's row and checkpoint are written
            raise _EarlyStop
        return step(net, batch)

    try:
        model = engine.fit(model, optimizer, loader, guarded, val_fn=val_fn,
                           scheduler=scheduler)
    except _EarlyStop:
        _say(progress, f"{name}: early stop after epoch {selection.epoch} (no better "
             f"validation Dice for {cfg.patience} epochs; best epoch {selection.best_epoch}, "
             f"val_dice {selection.best:.4f})")
    if run_dir is not None:
        save_torch(Path(run_dir) / "last.pt", model.state_dict())
    if selection.state is not None:
        model.load_state_dict(selection.state)
        if val is not None:
            _say(progress, f"{name}: keeping epoch {selection.best_epoch} of {selection.epoch} "
                 f"(val_dice {selection.best:.4f}) [{clock(time.perf_counter() - started)}]")
    if run_dir is not None:
        save_torch(Path(run_dir) / "model.pt", model.state_dict())
    return model, engine.history


def _sub(run_dir: Path | None, name: str) -> Path | None:
    return None if run_dir is None else Path(run_dir) / name


def ce_weights(cfg: PiradsConfig, labels: Tensor) -> Tensor | None:
    """Frequency-balancing CE weights of the training labels (``None`` unless
    ``cfg.balance_ce``); see :func:`medcl.pirads.losses.balance_weights`."""
    from .losses import balance_weights

    return balance_weights(labels, N_CLASSES) if cfg.balance_ce else None


def supervised_loss(cfg: PiradsConfig, labels: Tensor | None = None):
    """The stage-1 :class:`~.losses.DualPathLoss` of ``cfg`` (CE balanced on ``labels``)."""
    from .losses import DualPathLoss

    return DualPathLoss(N_CLASSES, groups=tuple(map(tuple, cfg.groups)),
                        other_weight=cfg.other_weight, spacing=cfg.spacing,
                        ce_weight=None if labels is None else ce_weights(cfg, labels))


def _val_crops(cfg: PiradsConfig, val: tuple[Tensor, Tensor] | None):
    if val is None or len(val[0]) == 0:
        return None
    return centre_crops(cfg, val[0]), centre_crops(cfg, val[1])


def train_stage1(cfg: PiradsConfig, images: Tensor, labels: Tensor, run_dir: Path | None, *,
                 progress: bool = False, val: tuple[Tensor, Tensor] | None = None,
                 sdf: Tensor | None = None,
                 on_first_epoch: Callable[[float], str] | None = None) -> tuple[nn.Module, list]:
    """Stage 1: a fresh dual-path network trained up to ``cfg.epochs`` epochs on the labelled
    cases (``images``, ``labels`` as :func:`load_cases` gives them); ``val``: held-out
    (images, labels) for model selection; ``sdf``: their cached distance targets (computed
    here, once, when ``None``)."""
    supervised = supervised_loss(cfg, labels)
    sdf = distance_targets(cfg, labels) if sdf is None else sdf

    def step(net, batch):
        x, y, d = batch
        return supervised(net(x), y, d)

    return _fit(cfg, build_model(cfg, "dual"), ZoneCrops(cfg, images, labels, sdf), step,
                cfg.epochs, _sub(run_dir, "stage1"), progress, cfg.seed, name="stage 1",
                val=_val_crops(cfg, val), on_first_epoch=on_first_epoch)


def train_stage2(cfg: PiradsConfig, model: nn.Module, images: Tensor, labels: Tensor,
                 unlabelled: Tensor | None, run_dir: Path | None, *,
                 progress: bool = False, val: tuple[Tensor, Tensor] | None = None,
                 sdf: Tensor | None = None) -> tuple[nn.Module, list]:
    """Stage 2 (co-training): up to ``cfg.cotrain_epochs`` more epochs of ``model`` (trained in
    place; the returned model holds the best validation epoch of this stage).

    Unlabelled volumes join the labelled ones with labels ``-1`` (and distance 0); they only
    feed the consistency term. The consistency weight rises from ~0 to
    ``cfg.consistency_weight`` over the first ``cfg.consistency_rampup`` fraction of the
    stage's steps.
    """
    from .losses import CoTrainingLoss, sigmoid_rampup

    cotrain = CoTrainingLoss(supervised_loss(cfg, labels), w_cons=cfg.consistency_weight)
    sdf = distance_targets(cfg, labels) if sdf is None else sdf
    x_all, y_all, d_all = images, labels, sdf
    if unlabelled is not None and len(unlabelled):
        x_all = torch.cat([images, unlabelled])
        y_all = torch.cat([labels, torch.full((len(unlabelled), *labels.shape[1:]), -1,
                                              dtype=labels.dtype)])
        d_all = torch.cat([sdf, sdf.new_zeros((len(unlabelled), *sdf.shape[1:]))])
    batch = min(cfg.batch_size, len(x_all))
    ramp_steps = round(cfg.consistency_rampup * cfg.cotrain_epochs * -(-len(x_all) // batch))
    steps = [0]

    def step(net, batch):
        x, y, d = batch
        w = cfg.consistency_weight * sigmoid_rampup(steps[0], ramp_steps)
        steps[0] += 1
        return cotrain(net(x), y, d, w_cons=w)

    return _fit(cfg, model, ZoneCrops(cfg, x_all, y_all, d_all), step, cfg.cotrain_epochs,
                _sub(run_dir, "stage2"), progress, cfg.seed + 1, name="stage 2",
                val=_val_crops(cfg, val))


def _write_split(run_dir: Path | None, train: list[int], val: list[int]) -> None:
    if run_dir is not None:
        from medcl.util.atomic import write_text

        Path(run_dir).mkdir(parents=True, exist_ok=True)
        write_text(Path(run_dir) / SPLIT_NAME, json.dumps({"train": train, "val": val}) + "\n")


def _cpu_note(cfg: PiradsConfig) -> str | None:
    """A line saying a paper-sized network trains slowly here, when it is on a CPU."""
    if torch.cuda.is_available():
        return None
    small = math.prod(cfg.crop) <= 96 * 96 * 24 and max(cfg.filters) <= 64
    if small:
        return None
    return (f"training on the CPU at filters {cfg.filters}, crop {'x'.join(map(str, cfg.crop))}"
            ": at the paper's size one step of batch 2 takes about 50 s on 2 cores; "
            "`--preset cpu` (filters 8-64, crop 96x96x24) is the CPU size")


def train_dual(cfg: PiradsConfig, images: Tensor, labels: Tensor, unlabelled: Tensor | None,
               run_dir: Path | None, *, progress: bool = False, keep_stage1: bool = False,
               baseline: bool = False) -> tuple[nn.Module, dict]:
    """Stage 1 then (``cotrain_epochs > 0``) stage 2; returns the model and both histories.

    ``cfg.val_fraction`` of the labelled cases are held out (:func:`split_cases`; positions in
    ``run_dir/split.json``) and select each stage's best epoch; stage 2 starts from stage 1's
    best, and the returned model is the last stage's best (``run_dir/last.pt``: its last
    epoch). Distance targets are computed once per case, here. With ``progress``, the time of
    the first epoch and the projected time of the run (``baseline``: the single-path baseline
    trained afterwards included) are printed after the first epoch.

    With ``keep_stage1`` the histories also hold ``"stage1_model"``, a copy of the network as
    it was after stage 1 (to compare the stages on one training run).
    """
    from medcl.util.clock import clock

    train_idx, val_idx = split_cases(cfg, len(images))
    _write_split(run_dir, train_idx, val_idx)
    x, y = images[train_idx], labels[train_idx]
    val = (images[val_idx], labels[val_idx]) if val_idx else None
    note = _cpu_note(cfg)
    if note:
        _say(progress, note)
    n_unl = 0 if unlabelled is None else len(unlabelled)

    def plan(seconds: float) -> str:
        s1 = seconds * cfg.epochs
        s2 = seconds * cfg.cotrain_epochs * (len(x) + n_unl) / len(x)
        s3 = 0.5 * seconds * (cfg.epochs + cfg.cotrain_epochs) if baseline else 0.0
        parts = [f"stage 1 {clock(s1)}", f"stage 2 {clock(s2)}"]
        if baseline:
            parts.append(f"baseline ~{clock(s3)} (half a dual-path epoch, estimated)")
        return (f"epoch 1 took {clock(seconds)} ({len(x)} training, {len(val_idx)} validation "
                f"cases; crop {'x'.join(map(str, cfg.crop))}, filters {cfg.filters}); projected"
                f": {', '.join(parts)}; total ~{clock(s1 + s2 + s3)} (early stopping may cut "
                "it)")

    sdf = distance_targets(cfg, y)
    model, h1 = train_stage1(cfg, x, y, run_dir, progress=progress, val=val, sdf=sdf,
                             on_first_epoch=plan)
    histories: dict = {"stage1": h1}
    if keep_stage1:
        histories["stage1_model"] = copy.deepcopy(model).cpu().eval()
    if cfg.cotrain_epochs > 0:
        model, h2 = train_stage2(cfg, model, x, y, unlabelled, run_dir, progress=progress,
                                 val=val, sdf=sdf)
        histories["stage2"] = h2
    if run_dir is not None:  # the run's last epoch, beside the harness's model.pt (best)
        from medcl.util.atomic import write_bytes

        last_stage = "stage2" if cfg.cotrain_epochs > 0 else "stage1"
        write_bytes(Path(run_dir) / "last.pt",
                    (Path(run_dir) / last_stage / "last.pt").read_bytes())
    return model.cpu().eval(), histories


def train_single(cfg: PiradsConfig, images: Tensor, labels: Tensor, run_dir: Path | None, *,
                 progress: bool = False) -> tuple[nn.Module, list]:
    """The single-path MONAI baseline: the fused output's Dice + CE (Dice without background,
    pooled over the batch; CE balanced alike), both stages' epochs, the same optimiser,
    schedule, crops, augmentation, validation split and model selection."""
    from medcl.util.clock import clock

    from .losses import ZoneDiceCE

    train_idx, val_idx = split_cases(cfg, len(images))
    x, y = images[train_idx], labels[train_idx]
    val = (images[val_idx], labels[val_idx]) if val_idx else None
    loss = ZoneDiceCE(N_CLASSES, ce_weight=ce_weights(cfg, y))
    epochs = cfg.epochs + cfg.cotrain_epochs

    def step(net, batch):
        xb, yb = batch
        return loss(net(xb)["fused"], yb)

    def plan(seconds: float) -> str:
        return (f"baseline: epoch 1 took {clock(seconds)}; projected {epochs} epochs "
                f"~{clock(seconds * epochs)}")

    model, history = _fit(cfg, build_model(cfg, "single"), ZoneCrops(cfg, x, y), step, epochs,
                          run_dir, progress, cfg.seed, name="baseline", val=_val_crops(cfg, val),
                          on_first_epoch=plan)
    return model.cpu().eval(), history
