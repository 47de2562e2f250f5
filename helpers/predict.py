"""Put 68 landmarks on your own photos.

    python -m helpers.predict IMAGE [IMAGE ...] --checkpoint CKPT --out DIR

For every image: ``DIR/<name>_landmarks.png`` (the photo with each face's box and points)
and ``DIR/<name>_landmarks.json`` (``{"image", "width", "height", "faces": [{"box":
[left, top, width, height], "landmarks": [[x, y], ... 68]}]}``, pixels of the upright
photo, x before y, pixel centres at integers).  Any image mode works (RGBA, grayscale,
palette, 16-bit); EXIF-rotated photos are turned upright first; large photos are searched for
faces at a reduced size and landmarked at full size.  Inputs that share a file name get
names that tell them apart (``a/me.jpg`` and ``b/me.jpg`` give ``a_me.jpg_landmarks.png`` and
``b_me.jpg_landmarks.png``), so no result overwrites another.  Images with no face are
listed at the end; so are images that fail to decode or to be written, which are skipped
(the others go on) and make the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from .images import ImageError, load_image
from .landmarker import Landmarker, add_cli_options
from .outputs import OutputError, unique_names, writable_folder, write_bytes, write_png


def draw(rgb: np.ndarray, faces) -> np.ndarray:
    """The photo with each face's box (blue) and landmarks (red), sized to the photo."""
    out = np.ascontiguousarray(rgb.copy())
    scale = max(1, round(max(rgb.shape[:2]) / 500))
    for box, points in faces:
        x, y, w, h = (int(round(v)) for v in box)
        cv2.rectangle(out, (x, y), (x + w, y + h), (60, 120, 255), scale)
        for px, py in points:
            cv2.circle(out, (int(round(px)), int(round(py))), 2 * scale, (255, 40, 40), -1, cv2.LINE_AA)
    return out


def predict_file(path: Path, landmarker: Landmarker, out: Path, name: str | None = None) -> int:
    """Landmark one photo, write ``<name>_landmarks.png`` and ``.json`` (``name``: the file's
    stem unless given), return how many faces were found."""
    rgb = load_image(path, gray=False)
    faces = landmarker(rgb)
    stem = out / f"{name or path.stem}_landmarks"
    record = {
        "image": str(path),
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "faces": [
            {"box": [round(float(v), 2) for v in box], "landmarks": np.round(pts, 2).tolist()}
            for box, pts in faces
        ],
    }
    write_png(stem.with_name(stem.name + ".png"), draw(rgb, faces))
    write_bytes(stem.with_name(stem.name + ".json"), json.dumps(record, indent=1).encode())
    return len(faces)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    add_cli_options(parser)
    args = parser.parse_args(argv)
    try:
        out = writable_folder(args.out)
        lm = Landmarker.from_cli_options(args)
        lm.face_detector()  # built now, so a missing dlib is one line before any work
    except (OSError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    no_face, failed = [], []
    for path, name in unique_names(args.images).items():
        try:
            n = predict_file(path, lm, out, name)
        except (ImageError, OutputError) as exc:
            failed.append(str(exc))
            print(f"{path}: skipped", file=sys.stderr)
            continue
        print(f"{path}: {n} face{'s' if n != 1 else ''}" + ("" if n else " — no face found"))
        if not n:
            no_face.append(str(path))
    if no_face:
        print(f"no face found in {len(no_face)} image(s): {', '.join(no_face)}")
    if failed:
        print(f"skipped {len(failed)} image(s):")
        for f in failed:
            print(f"  {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
