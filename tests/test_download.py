"""Fetching the data sets: verified, idempotent, and every failure one line that says what to do."""

import os
import stat
import zipfile

import pytest

from helpers import download
from tests.conftest import DEFAULT_MIRROR


def test_mirror_fetch_verifies_and_is_idempotent(tmp_path, capsys):
    if not (DEFAULT_MIRROR / "imm_face_db.zip").exists():
        pytest.skip("no mirror")
    root = download.fetch("imm", mirror=DEFAULT_MIRROR, data_dir=tmp_path)
    assert len(list(root.glob("*.asf"))) == 240 and (root / download.MARKER).exists()
    assert download.require("imm", tmp_path) == root
    assert download.fetch("imm", mirror="/nonexistent", data_dir=tmp_path) == root  # nothing re-read
    assert f"already in {root}" in capsys.readouterr().out  # outside the repo: the whole path


def test_a_data_folder_inside_the_repo_is_named_from_the_repo_root(tmp_path, monkeypatch):
    monkeypatch.setattr(download.config, "ROOT", tmp_path)
    assert download._shown(tmp_path / "data" / "imm_face_db") == "data/imm_face_db"
    assert download._shown(tmp_path.parent / "elsewhere") == str(tmp_path.parent / "elsewhere")


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
    monkeypatch.setitem(
        download.SOURCES, "imm", download.Source(**{**src.__dict__, "urls": ("http://127.0.0.1:9/imm.zip",)})
    )
    with pytest.raises(download.DownloadError, match="could not download .*--mirror"):
        download.fetch("imm", data_dir=tmp_path)


def test_downloaded_original_is_verified_by_content(tmp_path, monkeypatch):
    """An archive with a label that does not parse is refused even without a known checksum."""
    monkeypatch.delenv("FKP_DATA_MIRROR", raising=False)
    if not (DEFAULT_MIRROR / "imm_face_db.zip").exists():
        pytest.skip("no mirror")
    _imm_with(tmp_path / "imm_face_db.zip", {"05-2m.asf": b"58\n0 0 zz"})
    with pytest.raises(download.DownloadError, match=r"did not verify \(05-2m.asf:2: .*delete it and re-run"):
        download.fetch("imm", data_dir=tmp_path)  # the archive is already in data/, so no download


def test_missing_data_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m helpers.download ibug"):
        download.require("ibug", tmp_path)


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
    assert download.main(["imm", "--mirror", str(tmp_path), "--data-dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def _imm_with(path, replace=None):
    """A copy of the mirror's IMM archive, with some members' bytes replaced."""
    with zipfile.ZipFile(DEFAULT_MIRROR / "imm_face_db.zip") as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, (replace or {}).get(info.filename.rsplit("/", 1)[-1], src.read(info)))
    return path


def test_a_damaged_archive_already_in_data_says_delete_and_rerun(tmp_path, monkeypatch):
    monkeypatch.delenv("FKP_DATA_MIRROR", raising=False)
    if not (DEFAULT_MIRROR / "imm_face_db.zip").exists():
        pytest.skip("no mirror")
    whole = (DEFAULT_MIRROR / "imm_face_db.zip").read_bytes()
    (tmp_path / "imm_face_db.zip").write_bytes(whole[: len(whole) // 2])  # an interrupted download
    with pytest.raises(
        download.DownloadError, match=r"imm_face_db.zip is damaged or incomplete .*: delete it and re-run"
    ):
        download.fetch("imm", data_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imm_face_db.zip"]  # no staging folder left


def test_an_interrupted_unpack_leaves_no_staging_folder(tmp_path, monkeypatch):
    if not (DEFAULT_MIRROR / "imm_face_db.zip").exists():
        pytest.skip("no mirror")
    src = download.SOURCES["imm"]

    def interrupted(root):
        raise KeyboardInterrupt

    monkeypatch.setitem(download.SOURCES, "imm", download.Source(**{**src.__dict__, "check": interrupted}))
    with pytest.raises(KeyboardInterrupt):
        download.fetch("imm", mirror=DEFAULT_MIRROR, data_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    # what a killed run (no clean-up at all) leaves is removed by the next run
    (tmp_path / ".imm_face_db.unpacking" / "x").mkdir(parents=True)
    (tmp_path / "tmpab12cd_9").mkdir()  # the staging name older versions used
    monkeypatch.setitem(download.SOURCES, "imm", src)
    download.fetch("imm", mirror=DEFAULT_MIRROR, data_dir=tmp_path, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imm_face_db"]


def test_unpacked_folders_get_ordinary_permissions(tmp_path):
    if not (DEFAULT_MIRROR / "imm_face_db.zip").exists():
        pytest.skip("no mirror")
    umask = os.umask(0o022)
    try:
        root = download.fetch("imm", mirror=DEFAULT_MIRROR, data_dir=tmp_path, quiet=True)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "01-1m.asf").stat().st_mode) == 0o644


def test_a_folder_from_another_release_is_unpacked_again(tmp_path, capsys):
    if not (DEFAULT_MIRROR / "imm_face_db.zip").exists():
        pytest.skip("no mirror")
    root = download.fetch("imm", mirror=DEFAULT_MIRROR, data_dir=tmp_path, quiet=True)
    marker = (root / download.MARKER).read_text()
    assert f"sha256 {download.SOURCES['imm'].mirror_sha256}" in marker and "source mirror" in marker
    assert download.is_current("imm", tmp_path)
    (root / download.MARKER).write_text(marker.replace(download.SOURCES["imm"].mirror_sha256, "0" * 64))
    (root / "stale.txt").write_text("from the older archive")
    assert not download.is_current("imm", tmp_path)
    download.fetch("imm", mirror=DEFAULT_MIRROR, data_dir=tmp_path)
    assert "unpacked from another release" in capsys.readouterr().out
    assert not (root / "stale.txt").exists() and download.is_current("imm", tmp_path)
    # a marker written before markers recorded the archive, from a mirror: unknown, so refreshed
    (root / download.MARKER).write_text("mirror /old/imm_face_db.zip (sha256 verified)\n240 images\n")
    assert not download.is_current("imm", tmp_path)
