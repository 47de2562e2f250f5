"""The IMM Face Database: ``.asf`` shape files, file-name metadata and the course split.

Each of the 240 images (40 people x 6 views, 640x480) has an ``.asf`` file with 58 points
whose x and y are fractions of the image width and height; a point at fraction ``r`` of
an image ``W`` pixels wide sits at pixel ``r * W`` in this package's convention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_POINTS = 58
WIDTH, HEIGHT = 640, 480
NOSE_TIP = 52  # 0-based index of the nose tip in the 58-point markup

# Groups of the 58-point markup (the .asf "path" column).
JAW = range(0, 13)
EYE_SUBJECT_LEFT = range(13, 21)  # the eye on the image's right side
EYE_SUBJECT_RIGHT = range(21, 29)
BROW_SUBJECT_LEFT = range(29, 34)
BROW_SUBJECT_RIGHT = range(34, 39)
MOUTH = range(39, 47)
NOSE = range(47, 58)


def _flip_permutation() -> np.ndarray:
    """Index map for a horizontal flip: point ``i`` of the flipped face is point ``perm[i]``.

    Derived from the markup's drawing order: the jaw runs right to left of the subject
    (0..12), the two eyes and brows are drawn in the same order (outer corner first for
    eyes, inner end first for brows), the mouth is a closed loop from one corner and the
    nose outline runs from one side to the other through the tip (52).
    """
    perm = np.arange(N_POINTS)
    perm[list(JAW)] = list(reversed(JAW))
    for a, b in ((EYE_SUBJECT_LEFT, EYE_SUBJECT_RIGHT), (BROW_SUBJECT_LEFT, BROW_SUBJECT_RIGHT)):
        perm[list(a)] = list(b)
        perm[list(b)] = list(a)
    perm[39:47] = [43, 42, 41, 40, 39, 46, 45, 44]
    perm[list(NOSE)] = list(reversed(NOSE))
    return perm


FLIP_PERMUTATION = _flip_permutation()

_NAME = re.compile(r"^(\d{2})-(\d)([mf])$")
VIEWS = {
    1: "frontal, neutral",
    2: "frontal, happy",
    3: "turned ~30 deg right",
    4: "turned ~30 deg left",
    5: "frontal, spot light",
    6: "arbitrary expression",
}


@dataclass(frozen=True)
class ImmSample:
    image_path: Path
    person: int
    view: int
    gender: str
    points: np.ndarray  # (58, 2) float32 pixels at 640x480, x before y


def parse_asf(path: str | Path, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """The 58 points of an ``.asf`` file in pixels; errors name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from exc
    body = [
        (i + 1, ln.strip()) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not body:
        raise ValueError(f"{path}: empty shape file")
    lineno, count = body[0]
    try:
        n = int(count)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: expected the number of points, got {count!r}") from None
    if n != N_POINTS:
        raise ValueError(f"{path}:{lineno}: expected {N_POINTS} points, the file declares {n}")
    rows = body[1 : 1 + n]
    if len(rows) < n:
        last = rows[-1][0] if rows else lineno
        raise ValueError(f"{path}:{last}: truncated, {len(rows)} of {n} points present")
    points = np.empty((n, 2), np.float32)
    for k, (ln, text) in enumerate(rows):
        cols = text.split()
        try:
            x, y = float(cols[2]), float(cols[3])
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{ln}: malformed point line {text!r}") from None
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"{path}:{ln}: relative coordinates outside [0, 1]: {x}, {y}")
        points[k] = (x * width, y * height)
    return points


def parse_name(path: str | Path) -> tuple[int, int, str]:
    """``(person, view, gender)`` from a name like ``01-3m.asf``."""
    m = _NAME.match(Path(path).stem)
    if not m:
        raise ValueError(f"{path}: not an IMM file name (expected e.g. 01-3m.asf)")
    return int(m.group(1)), int(m.group(2)), m.group(3)


def load_imm(root: str | Path) -> list[ImmSample]:
    """Every labelled image of an unpacked IMM folder, sorted by person then view."""
    root = Path(root)
    files = sorted(root.glob("*.asf"))
    if not files:
        raise FileNotFoundError(f"no .asf files in {root}: run `python -m helpers.download imm`")
    samples = []
    for asf in files:
        person, view, gender = parse_name(asf)
        samples.append(ImmSample(asf.with_suffix(".jpg"), person, view, gender, parse_asf(asf)))
    return samples


def course_split(
    samples: list[ImmSample], last_train_person: int = 32
) -> tuple[list[ImmSample], list[ImmSample]]:
    """The course split: persons 1-32 train (192 images), 33-40 validate (48 images)."""
    train = [s for s in samples if s.person <= last_train_person]
    val = [s for s in samples if s.person > last_train_person]
    return train, val
