"""Face crops map points both ways exactly."""

import numpy as np

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
