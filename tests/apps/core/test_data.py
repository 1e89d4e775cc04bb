"""Data of ``medcl core image``: packaged sets, folders, batched augmentations."""

import numpy as np
import pytest
import torch
from PIL import Image

from medcl.core.data import BatchAugment, load_data, read_folder, small_crop_size
from medcl.io.errors import InputFileError


def test_packaged_sets():
    digits = load_data("digits")
    assert digits.images.shape == (1797, 1, 8, 8) and digits.labels.max() == 9
    tex = load_data("textures")
    assert tex.images.shape[1:] == (1, 32, 32) and len(tex.classes) == 10
    assert 0 <= float(tex.images.min()) and float(tex.images.max()) <= 1
    assert torch.equal(tex.images, load_data("textures").images)  # the same set every run


@pytest.mark.parametrize("size, channels", [((8, 8), 1), ((32, 32), 3)])
def test_batch_augment_shapes_range_and_seeding(size, channels):
    x = torch.rand(5, channels, *size)
    aug = BatchAugment(size, channels, n_views=4, n_small=2)
    torch.manual_seed(1)
    views = aug(x)
    assert [tuple(v.shape[2:]) for v in views] == [size, size, *[small_crop_size(size)] * 2]
    assert not torch.allclose(views[0], views[1])  # independent draws per view
    torch.manual_seed(1)
    assert all(torch.equal(a, b) for a, b in zip(views, aug(x), strict=True))
    if max(size) > 16:
        assert all(float(v.min()) >= 0 and float(v.max()) <= 1 for v in views)


def test_folder_of_rgb_and_grey_images(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    Image.fromarray(np.full((10, 10, 3), 200, np.uint8)).save(tmp_path / "cat" / "1.png")
    Image.fromarray(np.full((10, 10), 50, np.uint8)).save(tmp_path / "dog" / "2.jpg")
    Image.fromarray(np.full((20, 10), 50, np.uint8)).save(tmp_path / "dog" / "3.PNG")
    data = read_folder(tmp_path)
    assert data.images.shape == (3, 3, 10, 10) and data.classes == ["cat", "dog"]
    assert list(data.labels) == [0, 1, 1] and data.names[2] == "dog/3.PNG"
    assert any("1 of 3 images were resized" in n for n in data.notes)
    assert any("converted to RGB" in n for n in data.notes)
    grey = read_folder(tmp_path, size=(4, 4), channels=1, want_labels=False)
    assert grey.images.shape == (3, 1, 4, 4) and grey.labels is None


def test_a_damaged_image_is_named(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputFileError, match="bad.png"):
        read_folder(tmp_path)
