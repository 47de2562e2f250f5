"""Face morphing from landmarks: Delaunay triangles, one affine warp per triangle, cross-dissolve.

The piecewise-affine warp is scikit-image's ``PiecewiseAffineTransform``: it triangulates
the target shape (Delaunay) and maps each triangle with its own affine transform, which is
exactly the per-triangle warp a morph needs; both faces are warped onto the same
triangulation of the in-between shape, so their triangles correspond.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage.transform import PiecewiseAffineTransform, warp

from . import geometry
from .landmarks68 import box_of


def align(
    rgb: np.ndarray, points: np.ndarray, size: int = 256, context: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` square crop around the face (its landmark box plus ``context``) and the
    points in it, so two faces start at the same place and scale."""
    m = geometry.square_crop(box_of(points), size, context)
    return geometry.warp(rgb, m, (size, size)), geometry.apply(m, points)


def _with_frame(points: np.ndarray, size: int) -> np.ndarray:
    """The landmarks plus the frame's corners and edge midpoints, so the whole image morphs."""
    e = size - 1
    border = np.array([[0, 0], [e / 2, 0], [e, 0], [e, e / 2], [e, e], [e / 2, e], [0, e], [0, e / 2]])
    return np.vstack([points, border])


def warp_to(rgb: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Warp ``rgb`` so that its points ``src`` land on ``dst`` (triangles of ``dst``)."""
    # maps output (dst) coordinates to input (src) ones
    if hasattr(PiecewiseAffineTransform, "from_estimate"):  # scikit-image >= 0.26
        tform = PiecewiseAffineTransform.from_estimate(dst, src)
    else:
        tform = PiecewiseAffineTransform()
        tform.estimate(dst, src)
    return warp(rgb, tform, output_shape=rgb.shape[:2], mode="edge")


def morph_frames(
    a: np.ndarray, pa: np.ndarray, b: np.ndarray, pb: np.ndarray, n: int = 24, size: int = 256
) -> list[np.ndarray]:
    """``n`` frames from face ``a`` to face ``b`` (RGB uint8 photos and their 68 points)."""
    a, pa = align(a, pa, size)
    b, pb = align(b, pb, size)
    pa, pb = _with_frame(pa, size), _with_frame(pb, size)
    frames = []
    for t in np.linspace(0.0, 1.0, n):
        mid = (1 - t) * pa + t * pb
        blend = (1 - t) * warp_to(a, pa, mid) + t * warp_to(b, pb, mid)
        frames.append((255 * blend).clip(0, 255).astype(np.uint8))
    return frames


def save_gif(frames: list[np.ndarray], path: str | Path, ms_per_frame: int = 80, bounce: bool = True) -> Path:
    """An endlessly looping GIF (forth and back when ``bounce``)."""
    path = Path(path)
    seq = frames + frames[-2:0:-1] if bounce else frames
    images = [Image.fromarray(f) for f in seq]
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0, optimize=True
    )
    return path
