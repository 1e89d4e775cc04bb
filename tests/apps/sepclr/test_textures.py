"""Tests of sepclr.textures: the generated digits-on-textures benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.transform import resize
from sklearn.linear_model import LogisticRegression

from medcl.io import ConfigError, InputFileError
from medcl.sepclr.data import load_contrastive, load_group_attributes
from medcl.sepclr.textures import (
    ATTRIBUTE_COLUMNS,
    TEXTURES,
    make_digits_on_textures,
    write_digits_on_textures,
)


@pytest.fixture(scope="module")
def data():
    return make_digits_on_textures(n_background=400, n_target=500, size=32, seed=0)


def test_shapes_dtypes_and_ranges(data) -> None:
    assert len(TEXTURES) >= 4
    assert data.background.shape == (400, 1, 32, 32)
    assert data.target.shape == (500, 1, 32, 32)
    for images in (data.background, data.target):
        assert images.dtype == torch.float32
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert images.std() > 0.05


def test_deterministic_given_seed() -> None:
    a = make_digits_on_textures(20, 20, size=16, seed=3)
    b = make_digits_on_textures(20, 20, size=16, seed=3)
    c = make_digits_on_textures(20, 20, size=16, seed=4)
    assert torch.equal(a.background, b.background) and torch.equal(a.target, b.target)
    assert a.attributes.equals(b.attributes)
    assert not torch.equal(a.background, c.background)
    assert not torch.equal(a.target, c.target)


def test_attributes_balanced_and_consistent(data) -> None:
    attrs = data.attributes
    assert tuple(attrs.columns) == ATTRIBUTE_COLUMNS
    assert len(attrs) == 900
    bg, tg = attrs[attrs.group == "background"], attrs[attrs.group == "target"]
    assert bg.file.tolist() == [f"bg_{i:05d}.png" for i in range(400)]
    assert tg.file.tolist() == [f"tg_{i:05d}.png" for i in range(500)]
    assert (bg.digit == -1).all()
    assert sorted(tg.digit.value_counts().to_dict().items()) == [(d, 50) for d in range(10)]
    for group in (bg, tg):
        counts = group.texture.value_counts()
        assert sorted(counts.index) == list(range(len(TEXTURES)))
        assert counts.max() - counts.min() <= 1
    assert (attrs.texture_name == [TEXTURES[t] for t in attrs.texture]).all()


def texture_features(images: torch.Tensor) -> np.ndarray:
    x = images[:, 0].numpy()
    return np.stack(
        [
            x.mean((1, 2)),
            x.std((1, 2)),
            np.abs(np.diff(x, axis=1)).mean((1, 2)),
            np.abs(np.diff(x, axis=2)).mean((1, 2)),
        ],
        axis=1,
    )


def test_texture_is_learnable_but_not_from_brightness(data) -> None:
    features = texture_features(data.background)
    y = data.attributes.texture.to_numpy()[:400]
    fit = LogisticRegression(max_iter=2000).fit(features[:300], y[:300])
    assert fit.score(features[300:], y[300:]) > 0.5  # chance 0.25
    mean_only = LogisticRegression(max_iter=2000).fit(features[:300, :1], y[:300])
    assert mean_only.score(features[300:, :1], y[300:]) < 0.45  # textures share one brightness


def test_digit_overlay_is_there_and_matches_its_label() -> None:
    with_digit = make_digits_on_textures(10, 400, size=32, seed=1)
    plain = make_digits_on_textures(10, 400, size=32, seed=1, digit_alpha=0.0)
    assert torch.equal(with_digit.background, plain.background)
    diff = (with_digit.target - plain.target)[:, 0].numpy()
    assert diff.min() >= -1e-6  # strokes are blended towards white

    crops = []
    for image in diff:
        ys, xs = np.nonzero(image > 1e-6)
        height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert 8 <= height <= 24 and 4 <= width <= 24  # within 0.75 * 32 = 24 pixels
        assert image.max() > 0.3  # clearly visible
        crops.append(resize(image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], (12, 12)))
    x = np.stack(crops).reshape(len(crops), -1)
    x /= x.max(axis=1, keepdims=True)
    y = with_digit.attributes.digit.to_numpy()[10:]
    fit = LogisticRegression(max_iter=2000).fit(x[:300], y[:300])
    assert fit.score(x[300:], y[300:]) > 0.5  # chance 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_background": 0},
        {"n_target": -1},
        {"size": 4},
        {"size": 1000},
        {"digit_scale": (0.8, 0.6)},
        {"digit_scale": (0.5, 1.5)},
        {"digit_alpha": 2.0},
    ],
)
def test_bad_arguments(kwargs) -> None:
    with pytest.raises(ConfigError):
        make_digits_on_textures(**kwargs)


def test_written_dataset_reads_back(tmp_path: Path) -> None:
    out = write_digits_on_textures(tmp_path / "dot", n_background=12, n_target=10, size=16, seed=2)
    assert out == tmp_path / "dot"
    assert sorted(p.name for p in out.iterdir()) == ["attributes.csv", "background", "target"]
    assert not [p for p in out.rglob(".*")]  # no temporary files left
    data = make_digits_on_textures(n_background=12, n_target=10, size=16, seed=2)

    pairs = load_contrastive(out / "background", out / "target")
    assert pairs.images.shape == (22, 1, 16, 16)
    assert pairs.notes == []
    expected = torch.cat([data.background, data.target])
    assert (pairs.images - expected).abs().max() <= 0.5 / 255 + 1e-6

    attrs = load_group_attributes(out / "attributes.csv", pairs)
    assert attrs.index.tolist() == pairs.names
    assert attrs["digit"].tolist() == data.attributes["digit"].tolist()
    assert attrs["texture_name"].tolist() == data.attributes["texture_name"].tolist()


def test_write_refuses_non_empty_folder_or_file(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(InputFileError, match="busy.*not empty"):
        write_digits_on_textures(tmp_path / "busy", n_background=2, n_target=2)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputFileError, match="not a folder"):
        write_digits_on_textures(tmp_path / "file", n_background=2, n_target=2)
