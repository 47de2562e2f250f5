"""Face crops map points both ways exactly."""

import numpy as np
import pytest

from helpers import faces, geometry
from helpers.augment import NONE
from helpers.landmarks68 import FaceRecord
from tests.test_geometry import blob, centroid


def test_crop_puts_a_marked_pixel_where_its_point_goes_and_maps_back(tmp_path, monkeypatch):
    monkeypatch.setattr(faces.config, "CACHE_DIR", tmp_path / "cache")
    # a blob at a known spot of a 300 x 200 photo, a box partly outside the photo
    spot = np.array([250.3, 40.7])
    img = blob((300, 200), spot, 2.0).astype(np.uint8)
    path = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(img).save(path)
    pts = np.tile(spot, (68, 1)).astype(np.float32)
    rec = FaceRecord(path, (220.0, -20.0, 100.0, 90.0), pts)
    ds = faces.face_dataset([rec], 64, NONE, context=0.25, base_scale=1.4)
    assert len(list((tmp_path / "cache").glob("faces_*.npz"))) == 1
    image, points, m = ds.sample(0, augment=False)
    np.testing.assert_allclose(centroid(image, points[0], 8), points[0], atol=0.15)
    np.testing.assert_allclose(
        points[0], geometry.apply(faces.crop_matrix(rec.box, 64, 0.25), spot[None])[0], atol=1e-4
    )
    np.testing.assert_allclose(ds.input_to_original(0, points), pts, atol=1e-4)
    np.testing.assert_allclose(ds.original_points(0), pts, atol=1e-4)


def _faces(n, first, augment=NONE, base_to_input=None):
    """``n`` labelled crops whose points tell them apart (the first at ``first``)."""
    from helpers.datasets import Item, KeypointDataset
    from helpers.landmarks68 import FLIP_PERMUTATION

    items = [
        Item(np.zeros((40, 40), np.uint8), np.full((68, 2), first + k, np.float32), geometry.IDENTITY.copy())
        for k in range(n)
    ]
    ds = KeypointDataset(items, (32, 32), augment, FLIP_PERMUTATION, base_to_input)
    ds.records = [f"face {first + k}" for k in range(n)]
    return ds


def test_every_300w_face_joins_the_training_and_validation_faces():
    """A final model trains on the training faces and the validation faces, in that order,
    augmented as the training faces are (or not at all), with augmentations of its own seed;
    crops cut another way are refused rather than joined."""
    from helpers.augment import Augment

    shrink = geometry.compose(geometry.IDENTITY, np.array([[0.8, 0, 0], [0, 0.8, 0]]))
    aug = Augment(max_rotation=10, flip_p=0.5)
    tune, plain, val = _faces(3, 10, aug, shrink), _faces(3, 10, NONE, shrink), _faces(2, 20, NONE, shrink)
    data = faces.IbugData(None, tune, tune, plain, val, val, {})
    joined = data.every_300w_face(seed=5)
    assert len(joined) == 5 and len(tune) == 3  # the training set itself is left as it was
    assert joined.records == ["face 10", "face 11", "face 12", "face 20", "face 21"]
    assert [it.points[0, 0] for it in joined.items] == [10, 11, 12, 20, 21]
    assert joined.augment == aug and np.allclose(joined.base_to_input, shrink)
    again = data.every_300w_face(seed=5)
    for i in range(5):  # the same seed draws the same augmentations
        np.testing.assert_array_equal(joined.sample(i)[1], again.sample(i)[1])
    unaugmented = data.every_300w_face(augment=False)
    assert unaugmented.augment == NONE and len(unaugmented) == 5
    np.testing.assert_allclose(unaugmented.sample(4)[1], geometry.apply(shrink, val.items[1].points))

    other = faces.IbugData(None, tune, tune, plain, _faces(2, 20), val, {})
    with pytest.raises(ValueError, match="cropped differently"):
        other.every_300w_face()
