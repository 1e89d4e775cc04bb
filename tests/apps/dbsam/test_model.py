"""Tests for dbsam.model (Qin et al., "DB-SAM", MICCAI 2024, arXiv:2410.04172): shapes,
per-element prompts, frozen/trainable parts, start-as-SAM, deformable interaction over the full
joint set, the authors' ViT-B settings, and checkpoint loading (interpolation, wrong size,
damaged and unsafe files)."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from medcl.dbsam.model import (
    ARCHS,
    DBSAM,
    PromptableSegmenter,
    VanillaSAM,
    build_model,
    build_sam,
    load_sam_checkpoint,
    parameter_counts,
)
from medcl.io.errors import ConfigError, InputFileError

SIZE = 256
BOXES = torch.tensor([[20.0, 30.0, 140.0, 200.0], [100.0, 60.0, 250.0, 120.0]])


@pytest.fixture(scope="module")
def tiny_sam():
    torch.manual_seed(0)
    return build_sam("tiny", SIZE)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def dbsam(tiny_sam) -> DBSAM:
    return DBSAM(copy.deepcopy(tiny_sam)).eval()


@pytest.fixture
def vanilla(tiny_sam) -> VanillaSAM:
    return VanillaSAM(copy.deepcopy(tiny_sam)).eval()


def _perturb(model: DBSAM) -> None:
    """Give every zero-initialised added parameter a value, so the added paths act."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith(("adapters", "cross_attn", "fusion")) and not param.any():
                param.copy_(0.05 * torch.randn(param.shape, generator=gen))


def test_shapes(dbsam, vanilla, images):
    for model in (dbsam, vanilla):
        assert isinstance(model, PromptableSegmenter)
        assert (model.image_size, model.arch) == (SIZE, "tiny")
        with torch.no_grad():
            emb = model.embed(images)
            assert emb.shape == (2, 256, 16, 16)
            assert model.decode(emb, BOXES).shape == (2, 1, 64, 64)
            assert model.decode(emb).shape == (2, 1, 64, 64)
            prompt = torch.randn(2, 1, 64, 64)
            assert model.decode(emb, mask_prompt=prompt).shape == (2, 1, 64, 64)
            assert model.decode(emb, BOXES, prompt).shape == (2, 1, 64, 64)
            torch.testing.assert_close(model(images, BOXES), model.decode(emb, BOXES))
    with pytest.raises(ValueError):
        dbsam.embed(torch.randn(1, 3, 128, 128))
    with pytest.raises(ValueError):
        dbsam.decode(torch.randn(2, 256, 16, 16), BOXES[:1])


def test_each_element_gets_its_own_prompt(dbsam, images):
    _perturb(dbsam)
    prompt = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        emb = dbsam.embed(images)
        together = dbsam.decode(emb, BOXES, prompt)
        for i in range(2):
            alone = dbsam.decode(emb[i:i + 1], BOXES[i:i + 1], prompt[i:i + 1])
            torch.testing.assert_close(together[i:i + 1], alone, rtol=1e-4, atol=1e-5)
            # the same as SAM's own decoder with multimask_output=False
            sparse, dense = dbsam.prompt_encoder(None, BOXES[i:i + 1], prompt[i:i + 1])
            reference, _ = dbsam.mask_decoder(emb[i:i + 1], dbsam.prompt_encoder.get_dense_pe(),
                                              sparse, dense, multimask_output=False)
            torch.testing.assert_close(alone, reference, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(together[0], together[1])
        swapped = dbsam.decode(emb, BOXES.flip(0), prompt)
        assert not torch.allclose(swapped, together)


def test_frozen_and_trainable_parts(dbsam, vanilla):
    frozen_prefixes = ("image_encoder.patch_embed", "image_encoder.pos_embed",
                       "image_encoder.blocks", "mask_decoder.iou_prediction_head",
                       *(f"mask_decoder.output_hypernetworks_mlps.{i}" for i in (1, 2, 3)),
                       "prompt_encoder.point_embeddings.0", "prompt_encoder.point_embeddings.1",
                       "prompt_encoder.not_a_point_embed")
    for name, param in dbsam.named_parameters():
        assert param.requires_grad == (not name.startswith(frozen_prefixes)), name
    trainable_roots = {n.split(".")[0] for n, p in dbsam.named_parameters() if p.requires_grad}
    assert trainable_roots == {"image_encoder", "prompt_encoder", "mask_decoder", "adapters",
                               "conv_branch", "cross_attn", "fusion"}
    assert all(p.requires_grad for p in dbsam.image_encoder.neck.parameters())
    assert len(dbsam.adapters) == ARCHS["tiny"]["depth"]
    assert dbsam.stage_indexes == tuple(ARCHS["tiny"]["global_attn_indexes"])
    for name, param in vanilla.named_parameters():
        expected = name.startswith(("prompt_encoder", "mask_decoder")) and not name.startswith(
            frozen_prefixes)
        assert param.requires_grad == expected, name
    for model in (dbsam, vanilla):
        counts = parameter_counts(model)
        assert counts["trainable"] + counts["frozen"] == sum(p.numel() for p in model.parameters())
        assert counts["trainable"] > 0 and counts["frozen"] > 0
    assert parameter_counts(dbsam)["frozen"] < parameter_counts(vanilla)["frozen"]  # the neck


def test_gradients_reach_trainable_parameters_only(dbsam, images):
    torch.manual_seed(0)  # drop path and dropout draw from torch's RNG
    _perturb(dbsam)
    dbsam.train()
    # boxes alone, and boxes with a mask prompt: together they use every prompt path
    loss = dbsam(images, BOXES).sigmoid().mean()
    loss = loss + dbsam(images, BOXES, torch.randn(2, 1, 64, 64)).sigmoid().mean()
    loss.backward()
    for name, param in dbsam.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
        else:
            assert param.grad is None, name
    for module in (dbsam.conv_branch, dbsam.cross_attn, dbsam.fusion, dbsam.adapters):
        assert sum(float(p.grad.abs().sum()) for p in module.parameters()) > 0


def test_untrained_dbsam_embeds_exactly_as_sam(dbsam, vanilla, images):
    with torch.no_grad():
        ours, sams = dbsam.embed(images), vanilla.embed(images)
        assert torch.equal(ours, sams)
        assert torch.equal(dbsam.decode(ours, BOXES), vanilla.decode(sams, BOXES))
        _perturb(dbsam)  # and the added paths are wired in
        assert not torch.allclose(dbsam.embed(images), sams)


def test_interaction_is_deformable_attention_over_the_full_joint_set(tiny_sam, images,
                                                                     monkeypatch):
    import medcl.dbsam.blocks as blocks

    model = DBSAM(copy.deepcopy(tiny_sam)).eval()
    seen = []
    sample = blocks.deformable_sample

    def spy(value, shapes, locations, weights):
        seen.append((list(shapes), tuple(locations.shape)))
        return sample(value, shapes, locations, weights)

    monkeypatch.setattr(blocks, "deformable_sample", spy)
    with torch.no_grad():
        model.embed(images[:1])
    # two stages (tiny's two global blocks); no pooling: the ViT grid (16 x 16 at 256²) and the
    # four pyramid levels on it, every token a query: 5 x 256 queries, 3 heads, 5 levels,
    # 4 points
    assert seen == [([(16, 16)] * 5, (1, 5 * 256, 3, 5, 4, 2))] * 2


def test_vit_b_settings_are_the_authors():
    model = DBSAM(build_sam("vit_b", 256))
    block = model.cross_attn[0]
    assert len(model.cross_attn) == 4
    attn = block.attn
    assert (attn.num_heads, attn.num_levels, attn.num_points) == (12, 5, 4)
    assert block.ffn.fc1.out_features == 4 * 768
    assert block.ffn.dwconv.groups == 4 * 768  # depthwise
    assert block.drop_path.p == pytest.approx(0.3)
    assert model.fusion.drop_path.p == pytest.approx(0.3)
    assert len(model.fusion.gates) == 5  # four pyramid levels and the ViT tokens
    widths = [m.out_channels for m in model.conv_branch.stacks[0].modules()
              if isinstance(m, torch.nn.Conv2d)]
    assert widths == [128, 128, 256, 256, 512, 512, 768]


def test_build_errors():
    with pytest.raises(ConfigError, match="vit_b"):
        build_sam("vit_x", 256)
    with pytest.raises(ConfigError, match="multiple of 16"):
        build_sam("tiny", 250)
    with pytest.raises(ConfigError, match="dbsam"):
        build_model("unet")


def test_build_model_with_checkpoint(tiny_sam, tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_sam.state_dict(), path)
    for kind, cls in (("dbsam", DBSAM), ("sam", VanillaSAM)):
        model = build_model(kind, "tiny", SIZE, path)
        assert isinstance(model, cls)
        for name, value in tiny_sam.state_dict().items():
            assert torch.equal(model.state_dict()[name], value), name
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": tiny_sam.state_dict()}, wrapped)
    build_sam("tiny", SIZE, wrapped)


def test_vit_b_checkpoint_loads_and_1024_tables_are_interpolated(tmp_path):
    torch.manual_seed(5)
    source = build_sam("vit_b", 256).state_dict()
    plain = tmp_path / "vit_b_256.pth"
    torch.save(source, plain)
    target = build_sam("vit_b", 256, plain)
    for name, value in target.state_dict().items():
        assert torch.equal(value, source[name]), name

    # the tables of a checkpoint made at 1024 x 1024 (a 64 x 64 token grid)
    made_at_1024 = OrderedDict(source)
    gen = torch.Generator().manual_seed(6)
    made_at_1024["image_encoder.pos_embed"] = torch.randn(1, 64, 64, 768, generator=gen)
    for i in ARCHS["vit_b"]["global_attn_indexes"]:
        for axis in "hw":
            made_at_1024[f"image_encoder.blocks.{i}.attn.rel_pos_{axis}"] = torch.randn(
                127, 64, generator=gen)
    big = tmp_path / "vit_b_1024.pth"
    torch.save(made_at_1024, big)
    load_sam_checkpoint(target, "vit_b", big)
    loaded = target.state_dict()
    assert loaded["image_encoder.pos_embed"].shape == (1, 16, 16, 768)
    expected = F.interpolate(made_at_1024["image_encoder.pos_embed"].permute(0, 3, 1, 2),
                             size=(16, 16), mode="bicubic", align_corners=False)
    torch.testing.assert_close(loaded["image_encoder.pos_embed"], expected.permute(0, 2, 3, 1))
    table = made_at_1024["image_encoder.blocks.2.attn.rel_pos_h"]
    assert loaded["image_encoder.blocks.2.attn.rel_pos_h"].shape == (31, 64)
    torch.testing.assert_close(
        loaded["image_encoder.blocks.2.attn.rel_pos_h"],
        F.interpolate(table.t()[None], size=31, mode="linear", align_corners=False)[0].t())
    # windowed blocks' tables depend on the window (14) only
    assert torch.equal(loaded["image_encoder.blocks.0.attn.rel_pos_w"],
                       source["image_encoder.blocks.0.attn.rel_pos_w"])
    assert loaded["image_encoder.blocks.0.attn.rel_pos_w"].shape == (27, 64)
    assert torch.equal(loaded["mask_decoder.iou_token.weight"],
                       source["mask_decoder.iou_token.weight"])


def _fake_encoder_state(width: int, depth: int) -> dict[str, torch.Tensor]:
    state = {"image_encoder.patch_embed.proj.weight": torch.zeros(width, 3, 16, 16)}
    state.update({f"image_encoder.blocks.{i}.norm1.weight": torch.zeros(width)
                  for i in range(depth)})
    return state


def test_checkpoint_of_another_size_names_file_and_arch(tiny_sam, tmp_path):
    path = tmp_path / "sam_vit_l.pth"
    torch.save(_fake_encoder_state(1024, 24), path)
    with pytest.raises(ConfigError) as err:
        load_sam_checkpoint(tiny_sam, "tiny", path)
    message = str(err.value)
    assert str(path) in message and "vit_l (width 1024, 24 blocks)" in message
    assert "pass --arch vit_l" in message
    odd = tmp_path / "odd.pth"
    torch.save(_fake_encoder_state(100, 3), odd)
    with pytest.raises(ConfigError, match="width 100 and 3 blocks"):
        load_sam_checkpoint(tiny_sam, "tiny", odd)


class _Arbitrary:
    """A class a weights-only load must refuse to rebuild."""


def test_bad_checkpoint_files(tiny_sam, tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_sam_checkpoint(tiny_sam, "tiny", tmp_path / "absent.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(InputFileError) as err:
        load_sam_checkpoint(tiny_sam, "tiny", corrupt)
    assert str(corrupt) in str(err.value) and "Fix:" in str(err.value)
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": _Arbitrary()}, unsafe)
    with pytest.raises(InputFileError, match="weights_only"):
        load_sam_checkpoint(tiny_sam, "tiny", unsafe)
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    with pytest.raises(InputFileError, match="not a Segment Anything state dict"):
        load_sam_checkpoint(tiny_sam, "tiny", other)
    extra = tmp_path / "extra.pth"
    torch.save({**tiny_sam.state_dict(), "adapters.0.proj.weight": torch.zeros(1)}, extra)
    with pytest.raises(InputFileError, match="adapters.0.proj.weight"):
        load_sam_checkpoint(tiny_sam, "tiny", extra)
    partial = tmp_path / "partial.pth"
    state = tiny_sam.state_dict()
    state.pop("mask_decoder.iou_token.weight")
    torch.save(state, partial)
    with pytest.raises(InputFileError, match="missing: mask_decoder.iou_token.weight"):
        load_sam_checkpoint(tiny_sam, "tiny", partial)
