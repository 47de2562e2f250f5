"""The sunglasses filter."""

import numpy as np

from helpers import overlays
from tests.test_morph import _face


def test_sunglasses_cover_the_eyes_only():
    img = np.full((200, 200, 3), 200, np.uint8)
    out = overlays.sunglasses(img, _face())
    assert out[90, 70].mean() < 80 and out[90, 130].mean() < 80  # dark lenses on both eyes
    assert (out[180:, :] == img[180:, :]).all() and (
        out[:40] == img[:40]
    ).all()  # chin and forehead untouched
