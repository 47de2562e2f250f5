"""The face morph."""

import numpy as np

from helpers import morph


def _face(size=200, shift=0.0):
    rng = np.random.default_rng(0)
    pts = rng.uniform(60, 140, (68, 2))
    pts[36:42] = [70 + shift, 90]
    pts[42:48] = [130 + shift, 90]
    pts[0], pts[16] = [55, 100], [145, 100]
    return pts


def test_morph_starts_at_one_face_and_ends_at_the_other(tmp_path):
    a = np.zeros((200, 200, 3), np.uint8)
    b = np.full((200, 200, 3), 255, np.uint8)
    frames = morph.morph_frames(a, _face(), b, _face(shift=5), n=5, size=64)
    assert len(frames) == 5 and frames[0].shape == (64, 64, 3)
    assert frames[0].mean() < 2 and frames[-1].mean() > 253 and 100 < frames[2].mean() < 155
    gif = morph.save_gif(frames, tmp_path / "face_morph.gif")
    from PIL import Image

    assert Image.open(gif).n_frames == 8  # forth and back
