"""2-D affine maps between image frames, in the package's pixel-centre convention.

Every geometric step (resize, crop around a box, flip, rotate, shift) is a 2x3 matrix
``M`` that maps a source pixel coordinate to the destination frame: ``p' = M @ [x, y, 1]``.
Composing the matrices and warping the image once with :func:`warp` keeps image and
keypoints exactly consistent, with a single interpolation.  OpenCV's ``warpAffine`` puts
pixel centres at integer coordinates, as this package does, so the same matrix serves both.

Why not ``torchvision.transforms.v2`` with ``tv_tensors.KeyPoints``: in torchvision 0.29
``horizontal_flip_keypoints`` uses the pixel-centre rule (``x' = W - 1 - x``) while
``resize_keypoints`` scales by the ratio (``x' = x * s``, the pixel-edge rule), so a
640->80 resize moves every keypoint by 0.44 px at 80 px wide (3.5 px at 640) against the
image.  The course's error budget is a few pixels, so the maps live here, tested.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def compose(*mats: np.ndarray) -> np.ndarray:
    """The map that applies ``mats[0]`` first, then ``mats[1]``, and so on."""
    out = np.eye(3)
    for m in mats:
        out = np.vstack([m, [0, 0, 1]]) @ out
    return out[:2]


def invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(..., 2)`` points through ``m``; keeps the input's dtype."""
    pts = np.asarray(points)
    out = pts.astype(np.float64) @ m[:, :2].T + m[:, 2]
    return out.astype(pts.dtype if np.issubdtype(pts.dtype, np.floating) else np.float32)


def resize(src_wh: tuple[float, float], dst_wh: tuple[float, float]) -> np.ndarray:
    """Scale a whole ``src`` frame onto ``dst``: pixel edges meet edges, centres shift by half a pixel."""
    sx, sy = dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])


def hflip(width: int) -> np.ndarray:
    """Mirror a frame ``width`` pixels wide: column ``j`` goes to ``width - 1 - j``."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def rotate(center: tuple[float, float], degrees: float, scale: float = 1.0) -> np.ndarray:
    """Rotate by ``degrees`` counter-clockwise as seen on screen (y down), about ``center``."""
    return cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(degrees), float(scale))


def frame_center(wh: tuple[float, float]) -> tuple[float, float]:
    return (wh[0] - 1) / 2.0, (wh[1] - 1) / 2.0


def square_crop(box: tuple[float, float, float, float], out_size: int, context: float) -> np.ndarray:
    """Map the square centred on ``box`` (left, top, width, height), with side
    ``max(width, height) * (1 + context)``, onto an ``out_size`` square frame."""
    left, top, w, h = box
    cx, cy = left + w / 2.0, top + h / 2.0  # box edges are pixel edges of a continuous box
    side = max(w, h) * (1.0 + context)
    s = out_size / side
    # continuous -> pixel-centre: x_c = x_edge - 0.5 on both sides of the map
    tx = (out_size / 2.0 - 0.5) - s * (cx - 0.5)
    ty = (out_size / 2.0 - 0.5) - s * (cy - 0.5)
    return np.array([[s, 0.0, tx], [0.0, s, ty]])


def warp(
    image: np.ndarray, m: np.ndarray, out_wh: tuple[int, int], border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """Warp ``image`` through ``m`` into an ``out_wh`` frame (bilinear, or area-averaged when
    ``m`` only shrinks and shifts, so a large downscale does not alias)."""
    w, h = int(out_wh[0]), int(out_wh[1])
    sx, sy = math.hypot(m[0, 0], m[1, 0]), math.hypot(m[0, 1], m[1, 1])
    if min(sx, sy) < 0.5:
        # pre-shrink by a whole factor with area averaging, then warp the rest of the way; the
        # frame is first trimmed to a multiple of the factor, so that the shrink is exactly 1/f
        # (cv2.resize rounds an odd side, which would stretch the map by up to half a pixel)
        f = max(1, int(1.0 / max(sx, sy)))
        h, w = (image.shape[0] // f) * f, (image.shape[1] // f) * f
        small = cv2.resize(image[:h, :w], (w // f, h // f), interpolation=cv2.INTER_AREA)
        pre = resize((w, h), (w // f, h // f))
        return warp(small, compose(invert(pre), m), out_wh, border)
    return cv2.warpAffine(image, m.astype(np.float64), (w, h), flags=cv2.INTER_LINEAR, borderMode=border)


def to_unit(points: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    """Pixel coordinates -> [-1, 1] across the frame (its outer pixel edges at -1 and 1), the
    scale models regress; independent of the input size, so losses compare across sizes."""
    wh = np.asarray(wh, np.float32)
    return (np.asarray(points, np.float32) + 0.5) / wh * 2.0 - 1.0


def from_unit(units, wh: tuple[int, int]):
    """Inverse of :func:`to_unit`; works on NumPy arrays and torch tensors alike."""
    w, h = wh
    out = units * 1.0
    out[..., 0] = (units[..., 0] + 1.0) * (w / 2.0) - 0.5
    out[..., 1] = (units[..., 1] + 1.0) * (h / 2.0) - 0.5
    return out
