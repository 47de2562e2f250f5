"""Reading images the way users have them: any mode, EXIF-rotated, possibly broken."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageError(ValueError):
    """An image file that cannot be decoded; the message names the file."""


def load_image(path: str | Path, gray: bool = True) -> np.ndarray:
    """``uint8`` array, ``(H, W)`` if ``gray`` else ``(H, W, 3)``, upright per its EXIF tag.

    RGBA is composited onto white so transparent areas do not turn black.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            return np.asarray(im.convert("L" if gray else "RGB"))
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageError(f"{path}: cannot decode image ({exc})") from None
