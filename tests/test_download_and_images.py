
import numpy as np
import pytest
from PIL import Image

from helpers import download
from helpers.images import ImageError, load_image
from tests.conftest import DEFAULT_MIRROR


def test_mirror_fetch_verifies_and_is_idempotent(tmp_path, capsys):
    if not (DEFAULT_MIRROR / "imm_face_db.zip").exists():
        pytest.skip("no mirror")
    root = download.fetch("imm", mirror=DEFAULT_MIRROR, data_dir=tmp_path)
    assert len(list(root.glob("*.asf"))) == 240 and (root / download.MARKER).exists()
    assert download.require("imm", tmp_path) == root
    assert download.fetch("imm", mirror="/nonexistent", data_dir=tmp_path) == root  # nothing re-read
    assert "already in" in capsys.readouterr().out


def test_checksum_mismatch_is_one_clear_error(tmp_path):
    (tmp_path / "imm_face_db.zip").write_bytes(b"not the archive")
    with pytest.raises(download.DownloadError, match="checksum mismatch for .*imm_face_db.zip"):
        download.fetch("imm", mirror=tmp_path, data_dir=tmp_path / "data")


def test_mirror_sums_must_agree(tmp_path):
    (tmp_path / "imm_face_db.zip").write_bytes(b"x")
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  imm_face_db.zip\n")
    with pytest.raises(download.DownloadError, match="SHA256SUMS lists"):
        download.fetch("imm", mirror=tmp_path, data_dir=tmp_path / "data")


def test_unreachable_source_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("FKP_DATA_MIRROR", raising=False)
    src = download.SOURCES["imm"]
    monkeypatch.setitem(download.SOURCES, "imm", download.Source(**{**src.__dict__, "urls": ("http://127.0.0.1:9/imm.zip",)}))
    with pytest.raises(download.DownloadError, match="could not download .*--mirror"):
        download.fetch("imm", data_dir=tmp_path)


def test_downloaded_original_is_verified_by_content(tmp_path, monkeypatch):
    """An archive with a label that does not parse is refused even without a known checksum."""
    monkeypatch.delenv("FKP_DATA_MIRROR", raising=False)
    if not (DEFAULT_MIRROR / "imm_face_db.zip").exists():
        pytest.skip("no mirror")
    import zipfile
    bad = tmp_path / "imm_face_db.zip"
    with zipfile.ZipFile(DEFAULT_MIRROR / "imm_face_db.zip") as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"58\n0 0 zz" if info.filename.endswith("05-2m.asf") else data)
    with pytest.raises(download.DownloadError, match=r"did not verify \(05-2m.asf:2: .*delete it and re-run"):
        download.fetch("imm", data_dir=tmp_path)  # the archive is already in data/, so no download


def test_missing_data_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m helpers.download ibug"):
        download.require("ibug", tmp_path)


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
    assert download.main(["imm", "--mirror", str(tmp_path), "--data-dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_load_image_modes_exif_and_errors(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 255  # red, half transparent on the left
    rgba[:, :3, 3] = 0
    rgba[:, 3:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = load_image(tmp_path / "a.png", gray=False)
    assert rgb.shape == (4, 6, 3) and tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[0, 5]) == (255, 0, 0)

    tall = Image.new("L", (6, 4))
    exif = tall.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    tall.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (6, 4)

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ImageError, match="broken.jpg: cannot decode"):
        load_image(tmp_path / "broken.jpg")
    with pytest.raises(ImageError, match="nope.jpg: no such image"):
        load_image(tmp_path / "nope.jpg")
