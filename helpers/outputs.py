"""Where the command-line tools write: a folder checked before any work, names that cannot
collide, and writes that fail loudly.

``cv2.imwrite`` reports a failed write by returning ``False``, which is easy to drop; here a
failed write is an ``OSError`` naming the file, like any other.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np


class OutputError(OSError):
    """An output folder or file that cannot be written; the message names it."""


def writable_folder(folder: str | Path) -> Path:
    """``folder``, created if need be, after proving a file can be written there."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder; --out needs a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write there ({exc.strerror or exc})") from None
    return folder


def unique_names(paths: list[Path]) -> dict[Path, str]:
    """A distinct output name for every input path (the same file given twice keeps one).

    A file's stem is its name where no other input shares it; names that would collide
    (``a/me.jpg`` and ``b/me.jpg``, or ``me.jpg`` and ``me.png``) take the folders that tell
    them apart and their extension: ``a_me.jpg`` and ``b_me.jpg``.  Names are compared
    without case, for case-insensitive file systems."""
    files = list(dict.fromkeys(Path(os.path.abspath(p)) for p in paths))
    stems = Counter(p.stem.lower() for p in files)
    names = {}
    for p in files:
        if stems[p.stem.lower()] == 1:
            names[p] = p.stem
            continue
        twins = [q for q in files if q != p and q.stem.lower() == p.stem.lower()]
        depth = 0  # the fewest parent folders that tell this file from its twins
        while any(_tail(q, depth).lower() == _tail(p, depth).lower() for q in twins) and depth < len(p.parts):
            depth += 1
        names[p] = _tail(p, depth)
    taken = Counter(n.lower() for n in names.values())
    for p, n in names.items():  # a disambiguated name may equal another file's stem: number it
        if taken[n.lower()] > 1:
            names[p] = f"{n}_{sorted(names).index(p)}"
    return {Path(p): names[Path(os.path.abspath(p))] for p in paths}


def _tail(path: Path, depth: int) -> str:
    parts = [*path.parent.parts[len(path.parent.parts) - depth :], path.name] if depth else [path.name]
    return "_".join(part.strip("/\\") or "root" for part in parts)


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB ``uint8`` image as PNG, or raise :class:`OutputError` naming the file."""
    path = Path(path)
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"{path}: could not encode the image as PNG")
    write_bytes(path, data.tobytes())
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"{path}: could not write ({exc.strerror or exc})") from None
    return path
