"""Tests of sepclr.data: image folders, NIfTI slices, attribute CSVs and contrastive pairs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from skimage import io as skio

from medcl.io import ConfigError, InputFileError
from medcl.sepclr.data import (
    IMAGE_SUFFIXES,
    load_attributes,
    load_contrastive,
    load_group_attributes,
    load_image_folder,
)

RNG = np.random.default_rng(0)


def gray(h: int = 16, w: int = 16) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def rgb(h: int = 16, w: int = 16) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def save_nifti(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4)), path)
    return path


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# -- image folders ------------------------------------------------------------------------------
def test_gray_pngs_sorted_scaled_and_inputs_untouched(tmp_path: Path) -> None:
    arrays = {name: gray() for name in ("c.png", "a.png", "b.PNG")}
    for name, array in arrays.items():
        save_png(tmp_path / name, array)
    (tmp_path / "readme.txt").write_text("not an image")
    before = digest(tmp_path)

    out = load_image_folder(tmp_path)

    assert out.names == ["a.png", "b.PNG", "c.png"]
    assert out.images.shape == (3, 1, 16, 16) and out.images.dtype == torch.float32
    for i, name in enumerate(out.names):
        np.testing.assert_allclose(out.images[i, 0].numpy(), arrays[name] / 255.0, atol=1e-6)
    assert out.folder == tmp_path
    assert any("ignored 1 file" in note for note in out.notes)
    assert digest(tmp_path) == before


def test_16bit_png_scaled_by_dtype_max(tmp_path: Path) -> None:
    array = np.zeros((10, 10), dtype=np.uint16)
    array[0, 0], array[1, 1] = 65535, 1000
    skio.imsave(tmp_path / "deep.png", array, check_contrast=False)
    out = load_image_folder(tmp_path)
    assert out.images[0, 0, 0, 0] == pytest.approx(1.0)
    assert out.images[0, 0, 1, 1] == pytest.approx(1000 / 65535, abs=1e-6)
    assert out.images[0, 0, 2, 2] == 0.0


def test_channels_auto_and_forced(tmp_path: Path) -> None:
    save_png(tmp_path / "g.png", gray())
    color = rgb()
    save_png(tmp_path / "r.png", color)
    auto = load_image_folder(tmp_path)
    assert auto.images.shape == (2, 3, 16, 16)
    # the grayscale image is repeated to three channels
    assert torch.equal(auto.images[0, 0], auto.images[0, 2])
    assert any("repeated to 3 channels" in n for n in auto.notes)
    np.testing.assert_allclose(auto.images[1].permute(1, 2, 0).numpy(), color / 255.0, atol=1e-6)

    forced = load_image_folder(tmp_path, channels=1)
    assert forced.images.shape == (2, 1, 16, 16)
    assert any("converted to grayscale" in n for n in forced.notes)

    only_gray = tmp_path / "only_gray"
    save_png(only_gray / "g.png", gray())
    assert load_image_folder(only_gray).images.shape[1] == 1
    assert load_image_folder(only_gray, channels=3).images.shape[1] == 3


def test_rgba_drops_alpha_and_identical_rgb_is_gray(tmp_path: Path) -> None:
    rgba = np.dstack([rgb(), np.full((16, 16), 7, np.uint8)])
    save_png(tmp_path / "rgba" / "x.png", rgba)
    out = load_image_folder(tmp_path / "rgba")
    assert out.images.shape == (1, 3, 16, 16)
    np.testing.assert_allclose(
        out.images[0].permute(1, 2, 0).numpy(), rgba[..., :3] / 255.0, atol=1e-6
    )
    assert any("alpha dropped" in n for n in out.notes)

    plane = gray()
    save_png(tmp_path / "flat" / "x.png", np.dstack([plane] * 3))
    flat = load_image_folder(tmp_path / "flat")
    assert flat.images.shape == (1, 1, 16, 16)
    assert any("identical channels" in n for n in flat.notes)


def test_mixed_sizes_resized_to_most_common_with_note(tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", gray(16, 16))
    save_png(tmp_path / "b.png", gray(16, 16))
    save_png(tmp_path / "c.png", np.full((20, 12), 255, np.uint8))
    out = load_image_folder(tmp_path)
    assert out.images.shape == (3, 1, 16, 16)
    assert any("resized 1 of 3" in n and "16x16" in n for n in out.notes)
    assert torch.allclose(out.images[2], torch.ones(1, 16, 16))
    assert 0.0 <= out.images.min() and out.images.max() <= 1.0


def test_requested_size_and_bad_options(tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", gray(16, 20))
    out = load_image_folder(tmp_path, size=8)
    assert out.images.shape == (1, 1, 8, 8)
    assert any("resized 1 of 1" in n for n in out.notes)
    with pytest.raises(ConfigError, match="at least 8"):
        load_image_folder(tmp_path, size=4)
    with pytest.raises(ConfigError, match="channels"):
        load_image_folder(tmp_path, channels=2)


def test_nifti_volume_middle_or_chosen_slice(tmp_path: Path) -> None:
    volume = np.zeros((10, 12, 5), dtype=np.float32)
    for k in range(5):
        volume[:, :, k] = np.arange(120, dtype=np.float32).reshape(10, 12) * (k + 1) + 100 * k
    save_nifti(tmp_path / "vol.nii.gz", volume)
    expected = np.arange(120, dtype=np.float32).reshape(10, 12) / 119.0

    middle = load_image_folder(tmp_path)
    assert middle.names == ["vol.nii.gz"]
    assert middle.images.shape == (1, 1, 10, 12)
    np.testing.assert_allclose(middle.images[0, 0].numpy(), expected, atol=1e-6)
    assert any("middle slice 2" in n for n in middle.notes)
    assert any("min-max" in n for n in middle.notes)

    # make the chosen slice distinguishable after min-max scaling: a step along the columns
    volume[:, :, 4] = 0.0
    volume[:, 6:, 4] = 1.0
    save_nifti(tmp_path / "vol.nii.gz", volume)
    chosen = load_image_folder(tmp_path, nifti_slice=4)
    assert chosen.images[0, 0, :, :6].max() == 0.0 and chosen.images[0, 0, :, 6:].min() == 1.0
    assert any("chosen slice 4" in n for n in chosen.notes)

    with pytest.raises(InputFileError, match=r"vol\.nii\.gz.*0 to 4"):
        load_image_folder(tmp_path, nifti_slice=7)


def test_nifti_2d_and_singleton_third_axis(tmp_path: Path) -> None:
    save_nifti(tmp_path / "a.nii", np.arange(80, dtype=np.int16).reshape(8, 10))
    save_nifti(tmp_path / "b.nii", np.arange(80, dtype=np.int16).reshape(8, 10, 1))
    out = load_image_folder(tmp_path)
    assert out.names == ["a.nii", "b.nii"]
    assert out.images.shape == (2, 1, 8, 10)
    assert torch.equal(out.images[0], out.images[1])
    assert out.images.min() == 0.0 and out.images.max() == 1.0


def test_nifti_4d_is_refused(tmp_path: Path) -> None:
    save_nifti(tmp_path / "series.nii.gz", np.zeros((8, 8, 4, 3), np.float32))
    with pytest.raises(InputFileError, match=r"series\.nii\.gz.*\(8, 8, 4, 3\)"):
        load_image_folder(tmp_path)


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="nowhere.*not found"):
        load_image_folder(tmp_path / "nowhere")
    file = save_png(tmp_path / "one.png", gray())
    with pytest.raises(InputFileError, match=r"one\.png.*not a folder"):
        load_image_folder(file)


def test_empty_folder_lists_accepted_suffixes(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputFileError) as info:
        load_image_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "no image files" in message
    assert all(suffix in message for suffix in IMAGE_SUFFIXES)


@pytest.mark.parametrize("name", ["broken.png", "broken.jpg", "broken.nii.gz"])
def test_corrupt_file_is_named(tmp_path: Path, name: str) -> None:
    save_png(tmp_path / "good.png", gray())
    (tmp_path / name).write_bytes(b"\x00garbage, not an image\xff" * 10)
    with pytest.raises(InputFileError, match=name.replace(".", r"\.")) as info:
        load_image_folder(tmp_path)
    assert "good.png" not in str(info.value)


def test_too_small_image_is_named(tmp_path: Path) -> None:
    save_png(tmp_path / "big.png", gray())
    save_png(tmp_path / "tiny.png", gray(4, 9))
    with pytest.raises(InputFileError, match=r"tiny\.png.*4x9.*at least 8x8"):
        load_image_folder(tmp_path)


# -- attributes ---------------------------------------------------------------------------------
def test_load_attributes_aligns_and_ignores_unknown_rows(tmp_path: Path) -> None:
    csv = tmp_path / "attrs.csv"
    csv.write_text("file,age,subtype\nb.png,40,x\na.png,30,y\nextra.png,99,z\n")
    df = load_attributes(csv)
    assert df.index.name == "file" and len(df) == 3
    aligned = load_attributes(csv, names=["a.png", "b.png"])
    assert aligned.index.tolist() == ["a.png", "b.png"]
    assert aligned["age"].tolist() == [30, 40]


def test_load_attributes_errors_name_the_csv(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"none\.csv.*not found"):
        load_attributes(tmp_path / "none.csv")

    no_file = tmp_path / "no_file.csv"
    no_file.write_text("name,age\na.png,3\n")
    with pytest.raises(InputFileError, match=r"no_file\.csv.*no 'file' column.*'name'"):
        load_attributes(no_file)

    dup = tmp_path / "dup.csv"
    dup.write_text("file,age\na.png,3\na.png,4\n")
    with pytest.raises(InputFileError, match=r"dup\.csv.*duplicate.*'a\.png'"):
        load_attributes(dup)

    partial = tmp_path / "partial.csv"
    partial.write_text("file,age\nimg_00.png,1\n")
    names = [f"img_{i:02d}.png" for i in range(8)]
    with pytest.raises(InputFileError) as info:
        load_attributes(partial, names=names)
    message = str(info.value)
    assert "partial.csv" in message and "7 image(s)" in message
    assert "'img_01.png'" in message and "'img_05.png'" in message
    assert "'img_06.png'" not in message and "and 2 more" in message


# -- contrastive pairs --------------------------------------------------------------------------
def make_groups(tmp_path: Path) -> tuple[Path, Path]:
    bg, tg = tmp_path / "bg", tmp_path / "tg"
    for i in range(3):
        save_png(bg / f"b{i}.png", gray(16, 16))
    for i in range(2):
        save_png(tg / f"t{i}.png", rgb(24, 24))
    return bg, tg


def test_load_contrastive_common_size_and_channels(tmp_path: Path) -> None:
    bg, tg = make_groups(tmp_path)
    data = load_contrastive(bg, tg)
    assert data.images.shape == (5, 3, 16, 16)
    assert data.is_target.tolist() == [False, False, False, True, True]
    assert data.names == [
        "background/b0.png",
        "background/b1.png",
        "background/b2.png",
        "target/t0.png",
        "target/t1.png",
    ]
    assert any(n.startswith("target: resized 2 of 2") and "background" in n for n in data.notes)
    assert any(n.startswith("background:") and "repeated to 3" in n for n in data.notes)

    sized = load_contrastive(bg, tg, size=8, channels=1)
    assert sized.images.shape == (5, 1, 8, 8)


def test_load_contrastive_needs_both_sets(tmp_path: Path) -> None:
    bg, tg = make_groups(tmp_path)
    with pytest.raises(InputFileError, match="needs both"):
        load_contrastive(None, tg)
    with pytest.raises(InputFileError, match="needs both"):
        load_contrastive(bg, None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputFileError, match=r"empty.*background folder.*needs both"):
        load_contrastive(empty, tg)


def test_load_group_attributes_with_group_column_or_prefixes(tmp_path: Path) -> None:
    bg, tg = make_groups(tmp_path)
    data = load_contrastive(bg, tg)
    rows = [
        ("t1.png", "target", 5),
        ("b0.png", "background", 0),
        ("t0.png", "Target", 4),
        ("b2.png", "background", 2),
        ("b1.png", "background", 1),
        ("zz.png", "target", 9),
    ]
    grouped = tmp_path / "grouped.csv"
    pd.DataFrame(rows, columns=["file", "group", "score"]).to_csv(grouped, index=False)
    df = load_group_attributes(grouped, data)
    assert df.index.tolist() == data.names
    assert df["score"].tolist() == [0, 1, 2, 4, 5]
    assert df["group"].tolist() == ["background"] * 3 + ["target"] * 2
    assert df["file"].tolist() == ["b0.png", "b1.png", "b2.png", "t0.png", "t1.png"]

    prefixed = tmp_path / "prefixed.csv"
    pd.DataFrame({"file": list(reversed(data.names)), "score": [5, 4, 2, 1, 0]}).to_csv(
        prefixed, index=False
    )
    assert load_group_attributes(prefixed, data)["score"].tolist() == [0, 1, 2, 4, 5]


def test_load_group_attributes_errors(tmp_path: Path) -> None:
    bg, tg = make_groups(tmp_path)
    data = load_contrastive(bg, tg)

    partial = tmp_path / "partial.csv"
    partial.write_text("file,group,score\nb0.png,background,1\nt0.png,target,2\n")
    with pytest.raises(InputFileError, match=r"partial\.csv.*3 image\(s\).*'background/b1\.png'"):
        load_group_attributes(partial, data)

    bare = tmp_path / "bare.csv"
    bare.write_text("file,score\nb0.png,1\n")
    with pytest.raises(InputFileError, match=r"bare\.csv.*no 'group' column"):
        load_group_attributes(bare, data)

    bad_group = tmp_path / "bad_group.csv"
    bad_group.write_text("file,group\nb0.png,healthy\n")
    with pytest.raises(InputFileError, match=r"bad_group\.csv.*'healthy'"):
        load_group_attributes(bad_group, data)
