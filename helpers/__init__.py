"""Helpers for the facial-keypoints course notebooks.

Coordinate convention, used everywhere in this package: a keypoint is ``(x, y)`` in
pixels, x before y, with the centre of the top-left pixel at ``(0, 0)`` (OpenCV's and
the 300-W ``.pts`` convention).  Pixel ``(row i, column j)`` therefore covers
``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]``.  Every conversion between image sizes goes
through :mod:`helpers.geometry` so that the half-pixel offsets live in one place.
"""

import warnings

# timm imports huggingface_hub, which imports tqdm.auto; in a Jupyter kernel without ipywidgets
# that warns, into the committed writeup, that it cannot draw a widget progress bar.  This
# package's progress bars are plain tqdm text, so the warning tells a student nothing.
warnings.filterwarnings("ignore", message="IProgress not found")
