"""The method registry: every installed method trains a step; missing modules are refused."""

import dataclasses

import pytest
import torch

from medcl.core import recipes
from medcl.core.config import ImageConfig
from medcl.core.train import build_model, resolve
from medcl.io.errors import ConfigError

X = torch.rand(16, 1, 8, 8)
Y = torch.arange(16) % 4


@pytest.mark.parametrize("name", recipes.available())
def test_every_available_method_trains_one_step(name):
    recipe = recipes.get_recipe(name)
    cfg = resolve(ImageConfig(method=name, batch_size=16, width=4, proj_dim=8), recipe)
    torch.manual_seed(0)
    model, parts = build_model(cfg, recipe, 1, (8, 8), n_classes=4)
    out = model((X, Y if recipe.needs_labels else torch.full((16,), -1)))
    loss = out["loss"] if isinstance(out, dict) else out
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grad = model.encoder.net[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0  # the encoder learns from the loss


def test_swav_prototypes_frozen_in_the_first_epoch_only():
    recipe = recipes.get_recipe("swav")
    cfg = resolve(ImageConfig(method="swav", batch_size=16, width=4, proj_dim=8), recipe)
    model, _ = build_model(cfg, recipe, 1, (8, 8), n_classes=4)
    weight = model.criterion["prototypes"].weight
    for epoch, frozen in ((0, True), (1, False)):
        weight.grad = None
        model.epoch.fill_(epoch)
        model((X, torch.full((16,), -1))).backward()
        assert (weight.grad is None) == frozen
    assert cfg.views == 6 and recipe.n_small(6) == 4  # 2 large + 4 small crops


def test_missing_module_and_unknown_method_are_refused(monkeypatch):
    fake = dataclasses.replace(recipes.RECIPES["simclr"], name="later",
                               module="medcl.contrastive.losses.not_written_yet")
    monkeypatch.setitem(recipes.RECIPES, "later", fake)
    with pytest.raises(ConfigError, match="needs medcl.contrastive.losses.not_written_yet"):
        recipes.get_recipe("later")
    assert "later" not in recipes.available()
    with pytest.raises(ConfigError, match="not a known method"):
        recipes.get_recipe("byol")


def test_labels_reach_only_the_methods_that_need_them():
    assert {n for n, r in recipes.RECIPES.items() if r.needs_labels} == {"supcon", "hydra"}


def test_swav_prototypes_move_from_the_second_epoch_of_training(tmp_path):
    from medcl.core.train import train

    recipe = recipes.get_recipe("swav")
    cfg = resolve(ImageConfig(method="swav", batch_size=32, width=4, proj_dim=8, epochs=1),
                  recipe)
    x = torch.rand(64, 1, 8, 8)
    one = train(cfg, recipe, x, None, 4, tmp_path / "a", progress=False).model
    two = train(dataclasses.replace(cfg, epochs=2), recipe, x, None, 4, tmp_path / "b",
                progress=False).model
    torch.manual_seed(cfg.seed)
    init, _ = build_model(cfg, recipe, 1, (8, 8), 4)
    w0 = init.criterion["prototypes"].weight
    assert torch.allclose(one.criterion["prototypes"].weight, w0)  # frozen in epoch 1
    assert not torch.allclose(two.criterion["prototypes"].weight, w0, atol=1e-4)


def test_resnet18_backbone_on_tiny_grey_images():
    recipe = recipes.get_recipe("simclr")
    cfg = resolve(ImageConfig(method="simclr", backbone="resnet18", proj_dim=8), recipe)
    model, _ = build_model(cfg, recipe, 1, (8, 8), n_classes=4)
    assert model.encoder(torch.rand(3, 1, 8, 8)).shape == (3, 512)
    assert torch.isfinite(model((torch.rand(4, 1, 8, 8), torch.full((4,), -1))))
