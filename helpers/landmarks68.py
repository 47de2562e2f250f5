"""The 68-point iBUG markup and its three label formats: dlib XML, ``.pts`` and the YouTube-Faces CSV.

Markup: 0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth.  The outer eye
corners 36 and 45 give the inter-ocular distance that normalises NME.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_POINTS = 68
OUTER_EYE_CORNERS = (36, 45)


def _flip_permutation() -> np.ndarray:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]  # mouth
    perm = np.arange(N_POINTS)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


FLIP_PERMUTATION = _flip_permutation()


@dataclass(frozen=True)
class FaceRecord:
    """One labelled face: its image, a box ``(left, top, width, height)`` and 68 points (x, y)."""

    image_path: Path
    box: tuple[float, float, float, float]
    points: np.ndarray


def turn_index(points: np.ndarray) -> np.ndarray:
    """How far faces are turned from the camera, from their 68 points (``... x 68 x 2``): the
    difference between the nose tip's (30) distances to the two ends of the jaw (0, 16) over
    their sum.  0 for a frontal face, towards 1 in profile; the sign is dropped, so a turn to
    either side counts alike."""
    points = np.asarray(points, np.float64)
    left = np.linalg.norm(points[..., 30, :] - points[..., 0, :], axis=-1)
    right = np.linalg.norm(points[..., 30, :] - points[..., 16, :], axis=-1)
    return np.abs(left - right) / np.maximum(left + right, 1e-9)


def box_of(points: np.ndarray) -> tuple[float, float, float, float]:
    """The landmarks' bounding box, the box dlib's 300-W XML files carry."""
    lo, hi = points.min(0), points.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])


def _finite(values, where: str):
    if not np.isfinite(np.asarray(values, np.float64)).all():
        raise ValueError(f"{where}: non-finite coordinate (NaN or infinity)")
    return values


def load_dlib_xml(path: str | Path) -> list[FaceRecord]:
    """Every non-ignored box of a dlib ``imglab`` XML file, images resolved beside it.

    A file with no labelled face, or with a NaN or infinite coordinate, is an error naming
    the file and the entry: either would otherwise score as something it is not."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `python -m helpers.download ibug` or check the path")
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.xml"))
        hint = f" (it holds {', '.join(found[:3])})" if found else ""
        raise ValueError(f"{path} is a folder; give the dlib XML label file itself{hint}")
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise ValueError(f"{path}: malformed XML ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    faces = []
    for image in tree.getroot().iter("image"):
        name = image.get("file")
        if not name:
            raise ValueError(f"{path}: an <image> entry has no file attribute")
        for k, box in enumerate(image.iter("box")):
            where = f"{path}: image {name!r} box {k}"
            if box.get("ignore", "0") not in ("0", ""):
                continue
            try:
                left, top, width, height = (float(box.get(a)) for a in ("left", "top", "width", "height"))
                parts = {int(p.get("name")): (float(p.get("x")), float(p.get("y"))) for p in box.iter("part")}
            except (TypeError, ValueError):
                raise ValueError(f"{where}: non-numeric or missing box/part attribute") from None
            if sorted(parts) != list(range(N_POINTS)):
                raise ValueError(f"{where}: expected parts 00-{N_POINTS - 1}, found {len(parts)}")
            _finite((left, top, width, height), f"{where}, the box")
            bad = [i for i, xy in parts.items() if not np.isfinite(xy).all()]
            if bad:
                raise ValueError(f"{where}, part {bad[0]:02d}: non-finite coordinate (NaN or infinity)")
            points = np.array([parts[i] for i in range(N_POINTS)], np.float32)
            faces.append(FaceRecord(path.parent / name, (left, top, width, height), points))
    if not faces:
        raise ValueError(f"{path}: no labelled faces (no <image> with a <box> of {N_POINTS} parts)")
    return faces


def parse_pts(path: str | Path) -> np.ndarray:
    """The 68 points of an iBUG ``.pts`` file (``version``, ``n_points``, ``{ x y ... }``)."""
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise ValueError(f"{path}: no {{ ... }} block of points") from None
    declared = [ln for ln in lines[:start] if ln.startswith("n_points")]
    rows = [ln for ln in lines[start + 1 : end] if ln]
    if declared and int(declared[0].split(":")[1]) != N_POINTS or len(rows) != N_POINTS:
        raise ValueError(f"{path}: expected {N_POINTS} points, found {len(rows)}")
    try:
        points = np.array([[float(v) for v in row.split()[:2]] for row in rows], np.float32)
    except ValueError:
        bad = next(r for r in rows if not all(_is_number(v) for v in r.split()[:2]))
        raise ValueError(f"{path}: non-numeric point {bad!r}") from None
    bad = np.flatnonzero(~np.isfinite(points).all(1))
    if len(bad):
        raise ValueError(f"{path}: point {bad[0]} has a non-finite coordinate (NaN or infinity)")
    return points


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_youtube_csv(path: str | Path, image_dir: str | Path) -> list[FaceRecord]:
    """Rows of a YouTube-Faces keypoint CSV (file name, then x0, y0, ... x67, y67)."""
    path, image_dir = Path(path), Path(image_dir)
    faces = []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)  # header
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 1 + 2 * N_POINTS:
                raise ValueError(f"{path}:{lineno}: expected {1 + 2 * N_POINTS} columns, found {len(row)}")
            try:
                points = np.array(row[1:], np.float32).reshape(N_POINTS, 2)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: non-numeric coordinate in row for {row[0]!r}") from None
            _finite(points, f"{path}:{lineno} ({row[0]})")
            faces.append(FaceRecord(image_dir / row[0], box_of(points), points))
    if not faces:
        raise ValueError(f"{path}: no labelled rows")
    return faces


# a face's index within its photo: a short number after the photo's own name
_FACE_OF_PHOTO = re.compile(r"(?P<photo>.+)_\d{1,2}")


def photo_of(face: FaceRecord) -> str:
    """The photo a 300-W face was cut from, so that a split keeps each photo's faces together.

    300-W names the faces of one photo ``<photo>_<k>`` (Helen ``100040721_2``, AFW, iBUG
    ``image_003_1``), but LFPW names its one-face photos ``image_0001``: cutting the name at its
    last underscore made all 805 LFPW faces one "photo", which went wholly to training (no
    LFPW face was ever validated on) or, for one seed in ten, wholly to validation.  The face
    index is one or two digits; LFPW's photo numbers have four.  The folder is part of the
    photo, as two sources may use one name."""
    path = face.image_path
    named = _FACE_OF_PHOTO.fullmatch(path.stem)
    return str(path.parent / (named["photo"] if named else path.stem))


def person_of(frame: FaceRecord) -> str:
    """The person in a YouTube-Faces frame, named ``<person>_<k>.jpg`` (``Luis_Fonsi_21``):
    frames of one person are near copies, so they stay on one side of a split."""
    return frame.image_path.stem.rsplit("_", 1)[0]


def split_by_group(
    faces: list[FaceRecord], fraction: float, group: Callable[[FaceRecord], str], seed: int = 0
) -> tuple[list[FaceRecord], list[FaceRecord]]:
    """Hold out ``fraction`` of the groups (:func:`photo_of`, :func:`person_of`): all faces of
    a group go the same way, so no face is validated on a photo, or a person, it was trained on."""
    keys = [group(f) for f in faces]
    groups = sorted(set(keys))
    rng = np.random.default_rng(seed)
    held = (
        set(rng.choice(groups, size=max(1, round(fraction * len(groups))), replace=False)) if faces else set()
    )
    keep = [f for f, k in zip(faces, keys) if k not in held]
    out = [f for f, k in zip(faces, keys) if k in held]
    return keep, out
