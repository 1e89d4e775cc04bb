"""``medcl core t2i``: DAMSM + label-SupCon pretraining of the text/image encoders, the
DF-GAN-style GAN with (or without) label SupCon on two parameter-sharing branches, image
generation from text, and evaluation (in-domain Fréchet distance, R-precision; real FID/IS only
with Inception weights given by path).

The maths lives in :mod:`medcl.contrastive.text_image`; this module reads data, trains, and
writes run folders through :mod:`medcl.io`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from medcl.io.errors import ConfigError, RunFolderError

from .t2i_data import TextImageSet, check_enough, image_grid, load_text_images, split

ENCODERS_METHOD = "t2i-encoders"
GAN_METHOD = "t2i-gan"
SIZES = (32, 64, 128, 256)


@dataclass
class EncoderConfig:
    """DAMSM + label SupCon pretraining (``medcl core t2i pretrain``).

    ``gamma1, gamma2, gamma3`` are AttnGAN's CUB values; ``supcon_weight`` (1.0) and
    ``temperature`` (0.5, from T2I_CL) are our choices (the paper does not state them)."""

    data: str = "shapes"
    image_size: int = 64
    n_shapes: int = 800
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    dim: int = 64
    width: int = 32
    max_len: int = 18
    gamma1: float = 4.0
    gamma2: float = 5.0
    gamma3: float = 10.0
    supcon_weight: float = 1.0
    temperature: float = 0.5
    test_size: float = 0.2
    seed: int = 0


@dataclass
class GANConfig:
    """GAN phase (``medcl core t2i train``). DF-GAN: Adam(0, 0.9), lr_G 1e-4, lr_D 4e-4,
    MA-GP k 2, p 6; SupCon weight 0.2 and tau 0.5 from T2I_CL. Widths ``ngf = ndf = 16``
    keep a 64x64 epoch of ``shapes`` near a minute on one CPU core (DF-GAN uses 32-64)."""

    data: str = "shapes"
    encoders: str = ""
    supcon: bool = True
    epochs: int = 10
    batch_size: int = 32
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    nz: int = 100
    ngf: int = 16
    ndf: int = 16
    supcon_weight: float = 0.2
    temperature: float = 0.5
    with_real: bool = True
    gp_k: float = 2.0
    gp_p: float = 6.0
    n_shapes: int = 800
    test_size: float = 0.2
    seed: int = 0


def _check_size(size: int) -> None:
    if size not in SIZES:
        raise ConfigError(f"--image-size {size} is not one of {SIZES}",
                          fix="use 64 (CPU) or 256 (GPU)")


def _progress(name: str, epoch: int, epochs: int, row: dict[str, Any], start: float,
              progress: bool) -> None:
    from medcl.util.clock import clock

    if progress:
        values = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k not in ("epoch", "seconds"))
        print(f"{name} epoch {epoch + 1}/{epochs} {values} (elapsed "
              f"{clock(time.perf_counter() - start)})", file=sys.stderr, flush=True)


def _plot(folder: Any, history: list[dict[str, Any]], keys: list[str], title: str,
          name: str = "loss") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    for k in keys:
        ax.plot([r["epoch"] for r in history], [r[k] for r in history], marker="o", ms=3,
                label=k)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    folder.save_figure(name, fig)
    plt.close(fig)


def _to_gan(x: Tensor, device: torch.device | None = None) -> Tensor:
    """[0, 1] -> [-1, 1], on ``device`` when given."""
    return (x if device is None else x.to(device)) * 2.0 - 1.0


def device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch (the engine's ``seed_everything`` without importing
    Lightning, whose import alone costs seconds)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _pairs(data: TextImageSet, idx: np.ndarray, rng: np.random.Generator) -> tuple[list, list]:
    """Two captions of each image of ``idx`` (the same one twice when it has only one)."""
    caps = data.captions_of()
    a, b = [], []
    for i in idx:
        c = caps[i]
        j = rng.choice(c, size=2, replace=len(c) < 2)
        a.append(data.captions[j[0]])
        b.append(data.captions[j[1]])
    return a, b


def data_record(data: TextImageSet) -> dict[str, Any]:
    return {"source": data.source, "n_images": len(data.images), "n_captions":
            len(data.captions), "size": data.size, "classes": data.classes, "notes": data.notes}


# -- encoders ----------------------------------------------------------------------------------
class Encoders(nn.Module):
    """The DAMSM text and image encoders of one pretraining run."""

    def __init__(self, vocab_size: int, dim: int, width: int, image_size: int) -> None:
        from medcl.contrastive.text_image import ImageEncoder, TextEncoder

        super().__init__()
        self.text = TextEncoder(vocab_size, dim)
        # images larger than 64 are seen at 64x64 (AttnGAN resizes to Inception's 299)
        self.image = ImageEncoder(dim, 3, width, in_size=min(image_size, 64))


def _encode_texts(enc: Encoders, vocab: Any, texts: list[str], max_len: int):
    ids, lengths, _ = vocab.batch(texts, max_len)
    words, sent = enc.text(ids.to(device_of(enc)), lengths)
    return words, lengths, sent


@torch.no_grad()
def _embed(enc: Encoders, vocab: Any, images: Tensor, texts: list[str], max_len: int,
           batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Global image codes (N, D) of ``images`` in [0, 1] and sentence features of ``texts``."""
    enc.eval()
    dev = device_of(enc)
    codes = [enc.image(_to_gan(images[i:i + batch], dev))[1].cpu()
             for i in range(0, len(images), batch)]
    sents = [_encode_texts(enc, vocab, texts[i:i + batch], max_len)[2].cpu()
             for i in range(0, len(texts), batch)]
    return torch.cat(codes).numpy(), torch.cat(sents).numpy()


def _retrieval(enc: Encoders, vocab: Any, data: TextImageSet, max_len: int) -> dict[str, float]:
    from medcl.contrastive.text_image import retrieval_recalls

    codes, sents = _embed(enc, vocab, data.images, data.captions, max_len)
    codes /= np.linalg.norm(codes, axis=1, keepdims=True) + 1e-12
    sents /= np.linalg.norm(sents, axis=1, keepdims=True) + 1e-12
    return retrieval_recalls(codes @ sents.T, data.caption_image)


def pretrain_run(cfg: EncoderConfig, out: Path, *, progress: bool = True) -> Path:
    """Pretrain the encoders on the training images; write ``out`` (config, metrics,
    model.pt, loss.png, retrieval.csv of the held-out images, report.md)."""
    import pandas as pd

    from medcl.contrastive.text_image import Vocab, pretrain_terms
    from medcl.io import RunFolder

    _check_size(cfg.image_size)
    data = load_text_images(cfg.data, cfg.image_size, cfg.seed, cfg.n_shapes)
    tr, te = split(data, cfg.test_size, cfg.seed)
    check_enough(data, len(tr), "training")
    train_set = data.subset(tr)
    vocab = Vocab.build(train_set.captions)
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "command": "medcl core t2i pretrain", "method": ENCODERS_METHOD,
        "vocab": vocab.words, "data_record": data_record(data)})
    seed_all(cfg.seed)
    dev = pick_device()
    enc = Encoders(len(vocab), cfg.dim, cfg.width, cfg.image_size).to(dev)
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    labels_all = None if train_set.labels is None else torch.as_tensor(train_set.labels)
    batch = min(cfg.batch_size, len(tr))
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        enc.train()
        sums: dict[str, float] = {}
        perm = rng.permutation(len(tr))
        steps = 0
        for s in range(0, len(perm) - batch + 1, batch):
            idx = perm[s:s + batch]
            a, b = _pairs(train_set, idx, rng)
            images = _to_gan(train_set.images[torch.as_tensor(idx)], dev)
            regions, code = enc.image(images)
            branches = [_encode_texts(enc, vocab, t, cfg.max_len) for t in (a, b)]
            labels = None if labels_all is None else labels_all[torch.as_tensor(idx)].to(dev)
            terms = pretrain_terms(branches, regions, code, labels,
                                   gammas=(cfg.gamma1, cfg.gamma2, cfg.gamma3),
                                   supcon_weight=cfg.supcon_weight,
                                   temperature=cfg.temperature)
            opt.zero_grad()
            terms["loss"].backward()
            nn.utils.clip_grad_norm_(enc.parameters(), 5.0)
            opt.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            steps += 1
        row = {"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()},
               "seconds": time.perf_counter() - start}
        history.append(row)
        _progress("t2i pretrain", epoch, cfg.epochs, row, start, progress)
    folder.write_metrics(history)
    enc.cpu()
    folder.save_model({f"encoders.{k}": v for k, v in enc.state_dict().items()})
    _plot(folder, history, ["loss", "word", "sentence", "supcon"], "DAMSM + SupCon pretraining")
    sc = " + label SupCon" if labels_all is not None and cfg.supcon_weight > 0 else ""
    lines = [f"# t2i encoders on {data.source}", "",
             f"DAMSM (AttnGAN) word + sentence losses{sc} on two captions per image; "
             f"{cfg.epochs} epochs in "
             f"{time.perf_counter() - start:.0f} s on {len(tr)} training images; vocabulary "
             f"{len(vocab)} words; seed {cfg.seed}.", ""]
    lines += [f"- {n}" for n in data.notes]
    if len(te) >= 2:
        rec = _retrieval(enc, vocab, data.subset(te), cfg.max_len)
        table = folder.write_table("retrieval", pd.DataFrame([rec]), floatfmt=".1f")
        lines += ["", f"Sentence-image retrieval on the {len(te)} held-out images (R@K, %):",
                  "", table]
    lines += ["", "![training loss](loss.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


def _read(run: Path, method: str, command: str) -> tuple[Any, dict[str, Any]]:
    from medcl.io import RunFolder

    folder = RunFolder(Path(run))
    if not folder.config_path.is_file():
        raise RunFolderError("no config.yaml: not a run folder", path=folder.root,
                             fix=f"point to a folder written by `{command}`")
    record = folder.read_config()
    if record.get("method") != method:
        raise RunFolderError(f"written by {record.get('command', 'another command')!r}, not "
                             f"`{command}`", path=folder.config_path,
                             fix=f"point to a folder written by `{command}`")
    return folder, record


def load_encoders(run: Path) -> tuple[Encoders, Any, EncoderConfig, dict[str, Any]]:
    """The frozen encoders, vocabulary and config of a ``t2i pretrain`` run folder."""
    from medcl.contrastive.text_image import Vocab

    folder, record = _read(run, ENCODERS_METHOD, "medcl core t2i pretrain")
    cfg = EncoderConfig(**record["config"])
    vocab = Vocab(list(record["vocab"]))
    enc = Encoders(len(vocab), cfg.dim, cfg.width, cfg.image_size)
    state = folder.load_model()
    enc.load_state_dict({k.removeprefix("encoders."): v for k, v in state.items()
                         if k.startswith("encoders.")})
    enc.eval().requires_grad_(False)
    return enc, vocab, cfg, record


# -- GAN ---------------------------------------------------------------------------------------
@dataclass
class Trained:
    generator: nn.Module
    discriminator: nn.Module
    history: list[dict[str, Any]]
    seconds: float


def build_gan(cfg: GANConfig, enc_cfg: EncoderConfig) -> tuple[nn.Module, nn.Module]:
    from medcl.contrastive.text_image import Discriminator, Generator

    return (Generator(enc_cfg.dim, cfg.nz, cfg.ngf, enc_cfg.image_size),
            Discriminator(enc_cfg.dim, cfg.ndf, enc_cfg.image_size))


def train_gan(cfg: GANConfig, enc: Encoders, vocab: Any, enc_cfg: EncoderConfig,
              data: TextImageSet, *, progress: bool = True,
              budget_seconds: float | None = None) -> Trained:
    """Train the GAN on ``data`` (its labels are used by SupCon when ``cfg.supcon``).

    Each step: D on (real, matching text), (fake, text), (real, mismatched text) + MA-GP; then
    G on both branches (two captions of each image through the shared G), plus
    ``supcon_weight`` x SupCon over the frozen image encoder's codes of both fakes (and of the
    real images). ``budget_seconds`` stops at the first epoch boundary past it."""
    from medcl.contrastive.text_image import (
        d_hinge_loss,
        g_hinge_loss,
        ma_gradient_penalty,
        two_branch_supcon,
    )

    seed_all(cfg.seed)
    dev = pick_device()
    gen, disc = build_gan(cfg, enc_cfg)
    gen, disc, enc = gen.to(dev), disc.to(dev), enc.to(dev)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.0, 0.9))
    use_sc = cfg.supcon and data.labels is not None
    labels_all = None if data.labels is None else torch.as_tensor(data.labels)
    rng = np.random.default_rng(cfg.seed)
    n = len(data.images)
    batch = min(cfg.batch_size, n)
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    epochs = cfg.epochs if budget_seconds is None else 10**6
    for epoch in range(epochs):
        if budget_seconds is not None and time.perf_counter() - start >= budget_seconds:
            break
        gen.train()
        disc.train()
        sums: dict[str, float] = {}
        steps = 0
        perm = rng.permutation(n)
        for s in range(0, n - batch + 1, batch):
            idx = torch.as_tensor(perm[s:s + batch])
            a, b = _pairs(data, idx.numpy(), rng)
            with torch.no_grad():
                s1 = _encode_texts(enc, vocab, a, enc_cfg.max_len)[2]
                s2 = _encode_texts(enc, vocab, b, enc_cfg.max_len)[2]
            real = _to_gan(data.images[idx], dev)
            z1 = torch.randn(len(idx), cfg.nz, device=dev)
            z2 = torch.randn(len(idx), cfg.nz, device=dev)
            # discriminator
            fake = gen(z1, s1).detach()
            h_real = disc.features(real)
            d_loss = d_hinge_loss(disc.logits(h_real, s1), disc(fake, s1),
                                  disc.logits(h_real.roll(1, 0), s1))
            gp = ma_gradient_penalty(disc, real, s1, cfg.gp_k, cfg.gp_p)
            opt_d.zero_grad()
            (d_loss + gp).backward()
            opt_d.step()
            # generator: two parameter-sharing branches
            f1, f2 = gen(z1, s1), gen(z2, s2)
            adv = 0.5 * (g_hinge_loss(disc(f1, s1)) + g_hinge_loss(disc(f2, s2)))
            c1, c2 = enc.image(f1)[1], enc.image(f2)[1]
            with torch.no_grad():
                c_real = enc.image(real)[1] if cfg.with_real else None
            labels = None if labels_all is None else labels_all[idx].to(dev)
            if labels is not None:  # measured in both arms, trained on only with SupCon
                sc = two_branch_supcon(c1, c2, labels, cfg.temperature, c_real)
            else:
                sc = adv.new_zeros(())
            g_loss = adv + (cfg.supcon_weight * sc if use_sc else 0.0)
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            for k, v in (("d_loss", d_loss), ("gp", gp), ("g_adv", adv), ("supcon", sc)):
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            steps += 1
        row = {"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()},
               "seconds": time.perf_counter() - start}
        history.append(row)
        _progress(f"t2i train (supcon {'on' if use_sc else 'off'})", epoch,
                  cfg.epochs if budget_seconds is None else epoch + 1, row, start, progress)
    gen.cpu().eval()
    disc.cpu().eval()
    enc.cpu()
    return Trained(gen, disc, history, time.perf_counter() - start)


def train_run(cfg: GANConfig, out: Path, *, progress: bool = True,
              budget_seconds: float | None = None) -> Path:
    """``medcl core t2i train``: the GAN on the training split of the data the encoders saw
    (``cfg.epochs`` epochs, or whole epochs within ``budget_seconds``)."""
    from medcl.io import RunFolder

    enc, vocab, enc_cfg, enc_record = load_encoders(Path(cfg.encoders))
    data = load_text_images(cfg.data, enc_cfg.image_size, cfg.seed, cfg.n_shapes)
    if cfg.supcon and data.labels is None:
        raise ConfigError(f"--supcon on needs labels and {data.source} has none",
                          fix="add a label column to captions.csv or give --supcon off")
    tr, te = split(data, cfg.test_size, cfg.seed)
    check_enough(data, len(tr), "training")
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "command": "medcl core t2i train", "method": GAN_METHOD, "vocab": vocab.words,
        "encoder_config": asdict(enc_cfg), "data_record": data_record(data)})
    trained = train_gan(cfg, enc, vocab, enc_cfg, data.subset(tr), progress=progress,
                        budget_seconds=budget_seconds)
    folder.write_metrics(trained.history)
    state = {f"generator.{k}": v for k, v in trained.generator.state_dict().items()}
    state |= {f"discriminator.{k}": v for k, v in trained.discriminator.state_dict().items()}
    state |= {f"encoders.{k}": v for k, v in enc.state_dict().items()}
    folder.save_model(state)
    _plot(folder, trained.history, ["d_loss", "g_adv", "supcon"], "GAN training")
    held = data.subset(te) if len(te) else data.subset(tr[:16])
    texts = [held.captions[c[0]] for c in held.captions_of()[:16]]
    samples = sample(trained.generator, enc, vocab, enc_cfg, cfg.nz, texts, seed=cfg.seed)
    fig = image_grid(samples, 8, texts)
    folder.save_figure("samples", fig)
    import matplotlib.pyplot as plt

    plt.close(fig)
    arm = "on" if cfg.supcon else "off"
    lines = [f"# t2i GAN (label SupCon {arm}) on {data.source}", "",
             f"DF-GAN-style generator {enc_cfg.image_size}x{enc_cfg.image_size} (ngf "
             f"{cfg.ngf}, ndf {cfg.ndf}), hinge loss + MA-GP (k {cfg.gp_k}, p {cfg.gp_p}); two "
             f"parameter-sharing branches; label SupCon {arm} (weight {cfg.supcon_weight}, "
             f"tau {cfg.temperature}). {len(trained.history)} epochs in "
             f"{trained.seconds:.0f} s on {len(tr)} training images; seed {cfg.seed}. "
             f"Encoders: {cfg.encoders}.", ""]
    lines += [f"- {n}" for n in data.notes]
    lines += ["", "Samples from held-out captions:", "", "![samples](samples.png)", "",
              "![losses](loss.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


def load_gan(run: Path) -> tuple[nn.Module, Encoders, Any, GANConfig, EncoderConfig]:
    """Generator, encoders, vocabulary and configs of a ``t2i train`` run folder."""
    from medcl.contrastive.text_image import Vocab

    folder, record = _read(run, GAN_METHOD, "medcl core t2i train")
    cfg = GANConfig(**record["config"])
    enc_cfg = EncoderConfig(**record["encoder_config"])
    vocab = Vocab(list(record["vocab"]))
    state = folder.load_model()
    gen, _ = build_gan(cfg, enc_cfg)
    enc = Encoders(len(vocab), enc_cfg.dim, enc_cfg.width, enc_cfg.image_size)
    try:
        gen.load_state_dict({k.removeprefix("generator."): v for k, v in state.items()
                             if k.startswith("generator.")})
        enc.load_state_dict({k.removeprefix("encoders."): v for k, v in state.items()
                             if k.startswith("encoders.")})
    except RuntimeError as exc:
        raise RunFolderError("model.pt does not match config.yaml", path=folder.model_path,
                             fix="train into this folder again") from exc
    gen.eval()
    enc.eval().requires_grad_(False)
    return gen, enc, vocab, cfg, enc_cfg


@torch.no_grad()
def sample(gen: nn.Module, enc: Encoders, vocab: Any, enc_cfg: EncoderConfig, nz: int,
           texts: list[str], seed: int = 0, batch: int = 64) -> Tensor:
    """Images (N, 3, S, S) in [0, 1] for ``texts`` (one each), noise seeded by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(texts), batch):
        chunk = texts[i:i + batch]
        sent = _encode_texts(enc, vocab, chunk, enc_cfg.max_len)[2]
        z = torch.randn(len(chunk), nz, generator=g).to(device_of(gen))
        out.append(((gen(z, sent.to(device_of(gen))) + 1) / 2).cpu())
    return torch.cat(out).clamp(0, 1)


def generate_run(model: Path, text: str, n: int, out: Path, seed: int = 0) -> tuple[Path, list]:
    """``medcl core t2i generate``: ``n`` images of one text as ``grid.png`` and
    ``images/sample_K.png``; returns the grid path and the unknown words (mapped to <unk>)."""
    from PIL import Image

    from medcl.io import RunFolder
    from medcl.io.atomic import atomic_path

    if not text.strip():
        raise ConfigError("--text is empty", fix='give a caption, e.g. --text "a red circle"')
    if n < 1:
        raise ConfigError(f"--n {n} must be at least 1")
    gen, enc, vocab, cfg, enc_cfg = load_gan(model)
    ids, unknown = vocab.encode(text)
    if not ids or len(unknown) == len(ids):
        raise ConfigError(f"no word of {text!r} is in the model's vocabulary",
                          fix="use words of the training captions")
    images = sample(gen, enc, vocab, enc_cfg, cfg.nz, [text] * n, seed=seed)
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config({"model": str(model), "text": text, "n": n, "seed": seed},
                        seed=seed, extra={"command": "medcl core t2i generate",
                                          "method": "t2i-generate", "unknown_words": unknown})
    (folder.root / "images").mkdir(exist_ok=True)
    for k, im in enumerate(images):
        arr = (im.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        with atomic_path(folder.root / "images" / f"sample_{k}.png") as tmp:
            Image.fromarray(arr).save(tmp, format="PNG")
    fig = image_grid(images, 8)
    path = folder.save_figure("grid", fig)
    import matplotlib.pyplot as plt

    plt.close(fig)
    note = f" Unknown words mapped to <unk>: {', '.join(unknown)}." if unknown else ""
    folder.write_report(f"# Generated: {text!r}\n\n{n} images from {model} (seed {seed})."
                        f"{note}\n\n![grid](grid.png)\n")
    return path, unknown


def evaluate_run(model: Path, data_arg: str, out: Path, inception: Path | None = None,
                 seed: int = 0, n_shapes: int = 400) -> Path:
    """``medcl core t2i evaluate``: one generated image per image of ``data_arg`` (from its
    first caption); in-domain Fréchet distance and R-precision with the run's encoders (trained
    here on real data, so not FID); FID and IS with Inception weights from ``inception``."""
    import pandas as pd

    from medcl.contrastive.text_image import frechet_distance, r_precision
    from medcl.io import RunFolder

    if inception is not None and not Path(inception).is_file():
        raise ConfigError("--inception file not found", fix="give the path of the Inception "
                          "weights file (pt_inception-2015-12-05-6726825d.pth)")
    if inception is not None:
        _need_fidelity()
    gen, enc, vocab, cfg, enc_cfg = load_gan(model)
    data = (load_text_images("shapes", enc_cfg.image_size, seed + 1000, n_shapes)
            if data_arg == "shapes" else load_text_images(data_arg, enc_cfg.image_size))
    check_enough(data, len(data.images), "evaluation")
    caps = data.captions_of()
    texts = [data.captions[c[0]] for c in caps]
    fakes = sample(gen, enc, vocab, enc_cfg, cfg.nz, texts, seed=seed)
    real_codes, sents = _embed(enc, vocab, data.images, texts, enc_cfg.max_len)
    fake_codes, _ = _embed(enc, vocab, fakes, texts[:1], enc_cfg.max_len)
    row: dict[str, Any] = {"model": str(model), "supcon": cfg.supcon, "images": len(texts),
                           "in_domain_fd": frechet_distance(real_codes, fake_codes)}
    if data.labels is not None:
        pool_codes, pool = _embed(enc, vocab, data.images[:1], data.captions, enc_cfg.max_len)
        pool_labels = data.labels[data.caption_image]
        row["r_precision"] = r_precision(fake_codes, sents, data.labels, pool, pool_labels,
                                         seed=seed)
        row["r_precision_real"] = r_precision(real_codes, sents, data.labels, pool,
                                              pool_labels, seed=seed)
    if inception is not None:
        row |= inception_scores(data.images, fakes, Path(inception))
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config({"model": str(model), "data": data_arg, "inception":
                         None if inception is None else str(inception), "seed": seed},
                        seed=seed, extra={"command": "medcl core t2i evaluate",
                                          "method": "t2i-evaluate",
                                          "data_record": data_record(data)})
    table = folder.write_table("evaluation", pd.DataFrame([row]))
    k = min(16, len(texts))
    fig = image_grid(torch.cat([data.images[:k], fakes[:k]]), 8, texts[:k] * 2)
    folder.save_figure("grid", fig)
    import matplotlib.pyplot as plt

    plt.close(fig)
    lines = [f"# t2i evaluation of {model} on {data.source}", "",
             "In-domain Fréchet distance: the Fréchet distance between the run's DAMSM image "
             "encoder codes (trained here on real data) of real and generated images - not FID, "
             "comparable only between runs sharing these encoders. R-precision: the generated "
             "image's own caption ranked first among it and 99 captions of other classes "
             "(AttnGAN's protocol with our encoders); `r_precision_real` is the same for the "
             "real images (the encoders' ceiling).", ""]
    lines += [f"- {n}" for n in data.notes]
    lines += ["", table, "", "Real (top rows) and generated (bottom rows) from the same "
              "captions:", "", "![grid](grid.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


def _need_fidelity() -> None:
    try:
        import torch_fidelity  # noqa: F401
    except ImportError as exc:
        raise ConfigError("--inception needs the torch-fidelity package, which is not "
                          "installed", fix="pip install torch-fidelity, or drop --inception "
                          "(in-domain metrics need nothing)") from exc


def inception_scores(real: Tensor, fake: Tensor, weights: Path) -> dict[str, float]:
    """FID and IS with torchmetrics' Inception (torch-fidelity's network) loaded from
    ``weights``; needs the ``torch-fidelity`` package. Untested here: this environment has
    neither torch-fidelity nor the weights (no download is allowed)."""
    _need_fidelity()
    from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
    from torchmetrics.image.inception import InceptionScore

    to8 = lambda x: (x * 255).round().to(torch.uint8)  # noqa: E731
    fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights))
    fid.update(to8(real), real=True)
    fid.update(to8(fake), real=False)
    # InceptionScore takes no weights path: give it the same network, logits head
    logits = NoTrainInceptionV3(name="inception-v3-compat", features_list=["logits_unbiased"],
                                feature_extractor_weights_path=str(weights))
    iscore = InceptionScore(feature=logits)
    iscore.update(to8(fake))
    is_mean, is_std = iscore.compute()
    return {"fid": float(fid.compute()), "is_mean": float(is_mean), "is_std": float(is_std)}
