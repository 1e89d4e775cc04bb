"""The ``shapes`` generator and the DIR + captions.csv reader, including every bad input."""

import numpy as np
import pytest
from PIL import Image

from medcl.core.t2i_data import make_shapes, read_folder, split
from medcl.io.errors import InputFileError


def test_shapes_are_seeded_labelled_and_captioned():
    a, b = make_shapes(24, 32, seed=3), make_shapes(24, 32, seed=3)
    assert a.images.shape == (24, 3, 32, 32) and float(a.images.min()) >= 0
    assert np.array_equal(a.images.numpy(), b.images.numpy()) and a.captions == b.captions
    assert len(a.classes) == 12 and set(a.labels) <= set(range(12))
    caps = a.captions_of()
    assert all(2 <= len(c) <= 4 for c in caps)
    for i, c in enumerate(caps):  # every caption names the main object's colour and shape
        colour, kind = a.classes[a.labels[i]].split("-")
        assert all(colour in a.captions[k] and kind in a.captions[k] for k in c)
    sub = a.subset(np.array([5, 2]))
    assert sub.captions == [a.captions[k] for k in list(caps[5]) + list(caps[2])]
    tr, te = split(a, 0.25, 0)
    assert len(te) == 6 and not set(tr) & set(te)


def _write(root, rows, sizes=None, header="file,caption,label"):
    root.mkdir(parents=True, exist_ok=True)
    for k, f in enumerate(dict.fromkeys(r[0] for r in rows)):
        h = (sizes or {}).get(f, 16)
        Image.fromarray(np.full((h, h, 3), 40 * k, np.uint8)).save(root / f)
    lines = [header] + [",".join(r) for r in rows]
    (root / "captions.csv").write_text("\n".join(lines) + "\n")
    return root


def test_folder_reads_several_captions_and_resizes(tmp_path):
    root = _write(tmp_path / "d", [("a.png", "a red circle", "x"), ("a.png", "red round", "x"),
                                   ("b.png", "a blue square", "y"), ("c.png", "blue box", "y")],
                  sizes={"c.png": 20})
    ds = read_folder(root)
    assert ds.images.shape == (3, 3, 16, 16) and list(ds.caption_image) == [0, 0, 1, 2]
    assert ds.classes == ["x", "y"] and list(ds.labels) == [0, 1, 1]
    assert any("1 of 3 images were resized to 16x16" in n for n in ds.notes)


@pytest.mark.parametrize("rows,header,match", [
    ([("a.png", "a red circle", "x"), ("nope.png", "gone", "x")], None, "missing image"),
    ([("a.png", "", "x")], None, "empty caption"),
    ([("a.png", "a", "x"), ("a.png", "b", "y")], None, "two labels"),
    ([("a.png", "a")], "file,text", "lacks 'file' and 'caption'"),
])
def test_folder_bad_inputs(tmp_path, rows, header, match):
    root = tmp_path / "d"
    root.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "a.png")
    lines = [header or "file,caption,label"] + [",".join(r) for r in rows]
    (root / "captions.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError, match=match):
        read_folder(root)


def test_folder_without_captions(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputFileError, match="no captions.csv"):
        read_folder(tmp_path / "d")
