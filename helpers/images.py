"""Reading images the way users have them: any mode, EXIF-rotated, possibly broken."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError


def to_unit_float(images: np.ndarray) -> torch.Tensor:
    """``uint8`` images, ``(..., H, W)``, as a float tensor in [0, 1] with a channel axis
    before ``H``: the form photometric jitter works on."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(-3)


def centre(tensor: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-0.5, 0.5], the course's network input range (training and inference alike)."""
    return tensor - 0.5


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
