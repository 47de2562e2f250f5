"""Reading images the way users have them: any mode, EXIF-rotated, possibly broken."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps


def to_unit_float(images: np.ndarray) -> torch.Tensor:
    """``uint8`` images, ``(..., H, W)``, as a float tensor in [0, 1] with a channel axis
    before ``H``: the form photometric jitter works on."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(-3)


def centre(tensor: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-0.5, 0.5], the course's network input range (training and inference alike)."""
    return tensor - 0.5


class ImageError(ValueError):
    """An image file that cannot be decoded; the message names the file."""


MAX_PIXELS = 90_000_000  # about Pillow's decompression-bomb limit: a 9,500 x 9,500 photo


def load_image(path: str | Path, gray: bool = True, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """``uint8`` array, ``(H, W)`` if ``gray`` else ``(H, W, 3)``, upright per its EXIF tag.

    RGBA is composited onto white so transparent areas do not turn black.  16-bit and
    floating-point images keep their full range (Pillow's own conversion clips 16-bit values
    at 255, which turns most such photos white).  An image of more than ``max_pixels`` is
    refused before it is decoded: a decompression bomb, or a photo to shrink first.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below decides
            im = Image.open(path)
        with im:
            if im.width * im.height > max_pixels:
                raise ImageError(
                    f"{path}: {im.width} x {im.height} pixels is over the limit of {max_pixels / 1e6:.0f} "
                    "megapixels (shrink the photo first)"
                )
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            if im.mode.startswith(("I", "F")):  # 16- or 32-bit integer, or float, single channel
                return _gray_to_rgb(as_uint8(np.asarray(im), path), gray)
            return np.asarray(im.convert("L" if gray else "RGB"))
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: a folder, not an image file") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refused, too many pixels ({exc})") from None
    except MemoryError:
        raise ImageError(f"{path}: too large to decode in memory") from None
    except ImageError:
        raise
    except Exception as exc:  # Pillow's decoders raise many kinds (OSError, SyntaxError, struct.error, ...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{path}: cannot decode image ({reason})") from None


def _gray_to_rgb(gray_image: np.ndarray, gray: bool) -> np.ndarray:
    return gray_image if gray else np.repeat(gray_image[..., None], 3, axis=2)


def as_uint8(image, name: str = "image") -> np.ndarray:
    """An image array as ``uint8``: ``(H, W)``, or ``(H, W, 3)`` RGB (a single channel
    ``(H, W, 1)`` is squeezed, an alpha channel dropped).

    Accepts ``uint8``; ``uint16`` (16-bit photos, scaled by 255/65535); ``int32`` holding
    16-bit values (how Pillow decodes some 16-bit files); and floats in [0, 1].  Anything
    else raises a ``TypeError`` or ``ValueError`` that says what is expected."""
    if isinstance(image, Image.Image):
        image = np.asarray(image)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a NumPy array (H, W) or (H, W, 3), got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        image = image[..., 0] if image.shape[2] == 1 else image[..., :3]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or min(image.shape[:2]) == 0:
        raise ValueError(f"{name}: expected shape (H, W), (H, W, 1) or (H, W, 3), got {image.shape}")
    kind = image.dtype
    if kind == np.uint8:
        return np.ascontiguousarray(image)
    if kind == np.uint16 or (
        kind.kind in "iu" and kind != np.bool_ and image.size and 0 <= image.min() and image.max() <= 65535
    ):
        return np.ascontiguousarray(np.round(image.astype(np.float32) * (255 / 65535)).astype(np.uint8))
    if kind.kind == "f":
        finite = np.isfinite(image)
        if not finite.all():
            raise ValueError(f"{name}: a float image with NaN or infinite values")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{name}: a float image must lie in [0, 1], this one spans [{lo:g}, {hi:g}] "
                "(divide 0-255 values by 255, or pass uint8)"
            )
        return np.ascontiguousarray(np.round(image * 255).astype(np.uint8))
    raise TypeError(f"{name}: expected uint8, uint16 or float pixels in [0, 1], got {kind}")


def to_gray(image, name: str = "image") -> np.ndarray:
    """A ``uint8`` grayscale ``(H, W)`` array from any image :func:`as_uint8` accepts."""
    import cv2

    image = as_uint8(image, name)
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def sample_photos() -> dict[str, np.ndarray]:
    """Face photos that ship inside installed packages (RGB ``uint8``): scikit-image's astronaut
    (Eileen Collins) and matplotlib's Grace Hopper, and scikit-image's coffee, with no face."""
    import matplotlib.cbook
    from skimage import data

    hopper = load_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), gray=False)
    return {"astronaut": data.astronaut(), "Grace Hopper": hopper, "coffee (no face)": data.coffee()}


def my_photos(folder: str | Path | None = None) -> dict[str, np.ndarray]:
    """Every photo in ``data/my_photos/`` (RGB ``uint8``, by file name), or the sample photos
    when it holds none; a file that does not decode is reported and left out."""
    from . import config

    folder = Path(folder or config.DATA_DIR / "my_photos")
    photos = {}
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    for path in paths:
        try:
            photos[path.name] = load_image(path, gray=False)
        except ImageError as exc:
            print(f"skipped: {exc}")
    return photos or sample_photos()
