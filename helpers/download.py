"""Fetch, verify and unpack the course data sets into ``data/``.

Usage::

    python -m helpers.download imm [ibug youtube_faces ...] [--mirror DIR]

Each archive comes from its publisher's public URL, or from a local mirror folder when
``--mirror`` or ``FKP_DATA_MIRROR`` names one (CI points it at ``../shared/datasets``).
Mirror archives are repacks, so they are verified against the SHA-256 sums kept below (and
the mirror's own ``SHA256SUMS`` must agree); a publisher's original, whose checksum could
not be computed offline, is verified by its content instead: file counts and every label
parsing.  Running the command again on a verified folder does nothing, unless the folder was
unpacked from another archive than the one this code pins (its ``.verified`` marker records
the archive's SHA-256): then it is unpacked again.

Unpacking happens in a hidden staging folder beside the target, removed whatever happens
(a run cut short removes the last one's); unpacked files get ordinary permissions.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import sys
import tarfile
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import config

MARKER = ".verified"


class DownloadError(RuntimeError):
    """A data set could not be fetched or did not verify; the message says what to do."""


@dataclass(frozen=True)
class Source:
    name: str
    archive: str
    urls: tuple[str, ...]
    folder: str
    root_marker: str  # a file that sits at the root of the unpacked data set
    mirror_sha256: str
    check: Callable[[Path], str] = field(repr=False)
    original_sha256: tuple[str, ...] = ()


def _check_imm(root: Path) -> str:
    from .imm import load_imm

    samples = load_imm(root)
    if len(samples) != 240:
        raise DownloadError(f"{root}: expected 240 labelled IMM images, found {len(samples)}")
    missing = [s.image_path.name for s in samples if not s.image_path.exists()]
    if missing:
        raise DownloadError(f"{root}: images missing for {len(missing)} labels, e.g. {missing[0]}")
    return "240 images, 240 .asf files of 58 points"


def _check_ibug(root: Path) -> str:
    from .landmarks68 import load_dlib_xml

    counts = []
    for split in ("train", "test"):
        faces = load_dlib_xml(root / f"labels_ibug_300W_{split}.xml")
        missing = sorted({str(f.image_path) for f in faces if not f.image_path.exists()})
        if not faces or missing:
            raise DownloadError(f"{root}: {split} XML has {len(faces)} faces, {len(missing)} missing images")
        counts.append(f"{len(faces)} {split} faces")
    return ", ".join(counts)


def _check_youtube(root: Path) -> str:
    from .landmarks68 import load_youtube_csv

    counts = []
    for split, folder in (("training", "training"), ("test", "test")):
        faces = load_youtube_csv(root / f"{split}_frames_keypoints.csv", root / folder)
        missing = [f.image_path.name for f in faces if not f.image_path.exists()]
        if not faces or missing:
            raise DownloadError(f"{root}: {split} CSV has {len(faces)} rows, {len(missing)} missing images")
        counts.append(f"{len(faces)} labelled {split} frames")
    return ", ".join(counts)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="imm",
            archive="imm_face_db.zip",
            urls=(
                "http://www2.imm.dtu.dk/~aam/datasets/imm_face_db.zip",
                "https://web.archive.org/web/2019/http://www2.imm.dtu.dk/~aam/datasets/imm_face_db.zip",
            ),
            folder="imm_face_db",
            root_marker="01-1m.asf",
            mirror_sha256="19fd3c1ad3570cee07396d932534de8106f45d9978b5547cba8402a90c6253ac",
            check=_check_imm,
        ),
        Source(
            name="ibug",
            archive="ibug_300W_large_face_landmark_dataset.tar.gz",
            urls=("http://dlib.net/files/data/ibug_300W_large_face_landmark_dataset.tar.gz",),
            folder="ibug_300W_large_face_landmark_dataset",
            root_marker="labels_ibug_300W_train.xml",
            mirror_sha256="17c3b3524292d4c39e6ee97580f7ec00bfcea7cdfbad407e3b32ddda6788bc36",
            check=_check_ibug,
        ),
        Source(
            name="youtube_faces",
            archive="youtube_faces_68.zip",
            urls=(
                "https://s3.amazonaws.com/video.udacity-data.com/topher/2018/May/"
                "5aea1b91_train-test-data/train-test-data.zip",
            ),
            folder="youtube_faces_68",
            root_marker="training_frames_keypoints.csv",
            mirror_sha256="aa7a99071992765a5ee99ba72c9a7737a45e8dc603e1ccc97e6f3d69b680526d",
            check=_check_youtube,
        ),
    )
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_dir(name: str, data_dir: Path | None = None) -> Path:
    """Where ``name`` lives once fetched (whether or not it is there yet)."""
    return Path(data_dir or config.DATA_DIR) / SOURCES[name].folder


def require(name: str, data_dir: Path | None = None) -> Path:
    """The data set's folder, or a one-line error naming the command that fetches it."""
    root = dataset_dir(name, data_dir)
    if not (root / MARKER).exists():
        raise FileNotFoundError(
            f"{SOURCES[name].name} data not found in {root}: run `python -m helpers.download {name}` "
            "(add --mirror DIR or set FKP_DATA_MIRROR to use a local copy)"
        )
    return root


def _mirror_sums(mirror: Path) -> dict[str, str]:
    sums = {}
    listing = mirror / "SHA256SUMS"
    if listing.exists():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                sums[parts[1].lstrip("*")] = parts[0]
    return sums


def _from_mirror(src: Source, mirror: Path) -> Path:
    archive = mirror / src.archive
    if not archive.exists():
        raise DownloadError(f"{archive} not found: the mirror folder must hold {src.archive}")
    listed = _mirror_sums(mirror).get(src.archive)
    if listed is not None and listed != src.mirror_sha256:
        raise DownloadError(
            f"{mirror / 'SHA256SUMS'} lists {listed} for {src.archive} but this code expects "
            f"{src.mirror_sha256}: the mirror is from another release; refresh it"
        )
    got = sha256(archive)
    if got not in (src.mirror_sha256, *src.original_sha256):
        raise DownloadError(
            f"checksum mismatch for {archive}: expected {src.mirror_sha256}, got {got}; "
            "the copy is damaged or not the expected release: replace it"
        )
    return archive


def _from_url(src: Source, dest: Path) -> Path:
    from tqdm import tqdm

    part = dest.with_suffix(dest.suffix + ".part")
    errors = []
    for url in src.urls:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as fh:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=src.archive) as bar:
                    for block in iter(lambda: resp.read(1 << 20), b""):
                        fh.write(block)
                        bar.update(len(block))
            part.replace(dest)
            return dest
        except OSError as exc:
            errors.append(f"{url}: {exc}")
    part.unlink(missing_ok=True)
    raise DownloadError(
        f"could not download {src.archive} ({'; '.join(errors)}); fetch it by hand into a folder "
        "and pass --mirror DIR (or set FKP_DATA_MIRROR)"
    )


def _unpack(archive: Path, into: Path) -> None:
    """Unpack ``archive``; a damaged one is a :class:`DownloadError` that says what to do."""
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(into)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(into, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DownloadError(f"{archive} is damaged or incomplete ({exc}): delete it and re-run") from None


def _ordinary_permissions(root: Path) -> None:
    """Folders ``rwxr-xr-x`` and files ``rw-r--r--`` (less the umask): staging folders are
    private to their creator, and archives can carry odd modes."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(root, 0o755 & ~umask)
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(folder, d), 0o755 & ~umask)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o644 & ~umask)


_OLD_STAGING = re.compile(r"^tmp[a-z0-9_]{8}$")  # tempfile's names, used for staging before


def _remove_stale_staging(data_dir: Path, staging: Path) -> None:
    """Remove what an unpack cut short (a kill, a power cut) left behind."""
    stale = [staging] + [p for p in data_dir.iterdir() if p.is_dir() and _OLD_STAGING.match(p.name)]
    for p in stale:
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)


def _recorded_archive(root: Path) -> tuple[str | None, str | None]:
    """``(sha256, "mirror" or "download")`` of the archive a verified folder came from."""
    text = (root / MARKER).read_text(errors="replace")
    sha = re.search(r"^sha256 ([0-9a-f]{64})$", text, re.M)
    source = re.search(r"^source (mirror|download)$", text, re.M)
    if source is None:  # markers written before they recorded the archive
        source_name = "mirror" if text.startswith("mirror ") else "download"
    else:
        source_name = source.group(1)
    return (sha.group(1) if sha else None), source_name


def is_current(name: str, data_dir: Path | None = None) -> bool:
    """Whether ``data/<folder>`` holds a verified unpack of the archive this code pins.

    A publisher's original has no pinned sum (it was verified by content), so it stays
    current; a mirror archive must be the pinned one."""
    src, root = SOURCES[name], dataset_dir(name, data_dir)
    if not (root / MARKER).exists():
        return False
    sha, source = _recorded_archive(root)
    return source == "download" or sha in (src.mirror_sha256, *src.original_sha256)


def _find_root(tree: Path, marker: str, archive: Path) -> Path:
    hits = sorted(tree.rglob(marker), key=lambda p: len(p.parts))
    if not hits:
        raise DownloadError(f"{archive} holds no {marker}: it is not the expected data set")
    return hits[0].parent


def _shown(folder: Path) -> str:
    """A folder as the progress messages name it: from the repo root where it lies inside
    (``data/imm_face_db``, :func:`helpers.config.in_repo`), else its whole path."""
    folder = Path(folder).absolute()
    return config.in_repo(folder) or str(folder)


def fetch(
    name: str, mirror: str | Path | None = None, data_dir: Path | None = None, quiet: bool = False
) -> Path:
    """Make ``data/<folder>`` hold the verified data set ``name`` and return that folder."""
    if name not in SOURCES:
        raise DownloadError(f"unknown data set {name!r}; choose from {', '.join(SOURCES)}")
    src = SOURCES[name]
    data_dir = Path(data_dir or config.DATA_DIR)
    root = data_dir / src.folder
    say = (lambda *a: None) if quiet else print
    if is_current(name, data_dir):
        say(f"{name}: already in {_shown(root)}")
        return root
    if (root / MARKER).exists():
        say(
            f"{name}: {_shown(root)} was unpacked from another release of {src.archive}; "
            "unpacking the pinned one again"
        )
    mirror = mirror or os.environ.get("FKP_DATA_MIRROR") or None
    data_dir.mkdir(parents=True, exist_ok=True)
    if mirror:
        archive = _from_mirror(src, Path(mirror))
        source, digest, how = "mirror", src.mirror_sha256, f"mirror {archive} (sha256 verified)"
    else:
        archive = data_dir / src.archive
        if not archive.exists():
            _from_url(src, archive)
        source, digest = "download", sha256(archive)
        how = f"{archive.name} (verified by content)"
    staging = data_dir / f".{src.folder}.unpacking"
    _remove_stale_staging(data_dir, staging)
    try:
        staging.mkdir()
        _unpack(archive, staging)
        found = _find_root(staging, src.root_marker, archive)
        try:
            summary = src.check(found)
        except (ValueError, OSError) as exc:
            advice = "" if mirror else ": delete it and re-run"
            inside = str(exc).replace(
                f"{found}{os.sep}", ""
            )  # the staging folder is gone by the time anyone reads this
            raise DownloadError(f"{archive} did not verify ({inside}){advice}") from None
        if root.exists():
            shutil.rmtree(root)
        shutil.move(str(found), root)
        _ordinary_permissions(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (root / MARKER).write_text(f"{how}\nsha256 {digest}\nsource {source}\n{summary}\n")
    say(f"{name}: {summary} from {how} -> {_shown(root)}")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.download", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=[*SOURCES, "all"], help="data sets to fetch")
    parser.add_argument("--mirror", help="folder holding the archives (default: $FKP_DATA_MIRROR)")
    parser.add_argument("--data-dir", type=Path, help=f"where to unpack (default: {config.DATA_DIR})")
    args = parser.parse_args(argv)
    names = list(SOURCES) if "all" in args.names else args.names
    # a plain `kill` ends the unpack through the same clean-up as an error does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for name in names:
            fetch(name, mirror=args.mirror, data_dir=args.data_dir)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
