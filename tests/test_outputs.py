"""Where the tools write: checked first, no two inputs share an output, failed writes are errors."""

from pathlib import Path

import numpy as np
import pytest

from helpers.outputs import OutputError, unique_names, writable_folder, write_png


def test_unique_names_keep_plain_stems_and_tell_twins_apart():
    paths = [
        Path("a/me.jpg"),
        Path("b/me.jpg"),
        Path("me.png"),
        Path("x.jpg"),
        Path("x.jpg"),
        Path("c/d/ME.jpg"),
        Path("e/d/me.jpg"),
    ]
    names = unique_names(paths)
    assert names[Path("x.jpg")] == "x"  # no twin: the stem, as before
    assert (
        names[Path("a/me.jpg")] == "a_me.jpg"
        and names[Path("b/me.jpg")] == "b_me.jpg"
        and names[Path("me.png")] == "me.png"
    )
    assert names[Path("c/d/ME.jpg")] == "c_d_ME.jpg" and names[Path("e/d/me.jpg")] == "e_d_me.jpg"
    assert len({n.lower() for n in names.values()}) == len(names)  # the same file twice is one entry


def test_writable_folder(tmp_path):
    assert writable_folder(tmp_path / "new" / "deep").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        writable_folder(tmp_path / "file")
    with pytest.raises(OutputError, match="cannot write there"):
        writable_folder(tmp_path / "file" / "sub")
    assert not list(tmp_path.glob("new/deep/*"))  # the probe file is gone


def test_a_failed_image_write_is_an_error(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    assert write_png(tmp_path / "ok.png", rgb).stat().st_size > 0
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(OutputError, match="taken.png: could not write"):
        write_png(tmp_path / "taken.png", rgb)
