"""Face crops map points both ways exactly; detector, evaluate and predict work end to end."""

import json

import numpy as np
import pytest
import torch

from helpers import checkpoint, detect, evaluate, faces, geometry, landmarks68, metrics, models, predict
from helpers.augment import NONE
from helpers.landmarker import Landmarker
from helpers.landmarks68 import FaceRecord
from tests.test_transforms import blob, centroid


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


def test_metrics_nme_ced_auc():
    true = np.zeros((2, 68, 2))
    true[:, 45, 0] = 100.0  # outer eye corners 100 px apart
    pred = true.copy()
    pred[1, :, 1] += 5.0  # every point 5 px off: NME 5 %
    np.testing.assert_allclose(metrics.nme(pred, true), [0.0, 0.05])
    x, y = metrics.ced(np.array([0.0, 0.05]))
    assert y[0] == 0.5 and y[-1] == 1.0
    assert metrics.auc(np.zeros(3)) == pytest.approx(1.0)
    assert metrics.auc(np.array([0.05])) == pytest.approx(0.5, abs=1e-3)
    assert metrics.auc(np.array([np.inf])) == 0.0


def test_detector_finds_the_astronaut_and_nothing_in_coffee():
    import cv2
    from skimage import data

    det = detect.HaarFaceDetector()
    boxes = det(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY))
    assert len(boxes) >= 1
    x, y, w, h = boxes[0]
    assert 150 < x + w / 2 < 280 and 50 < y + h / 2 < 200  # her face, upper middle of the 512 px photo
    assert det(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY)) == []
    cal = detect.Calibration(0.0, 0.1, 0.8)
    assert cal.apply((0, 0, 100, 100)) == pytest.approx((10, 20, 80, 80))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    spec = {"kind": "soft_argmax", "n_points": 68, "width": 4, "dilations": (2,)}
    torch.manual_seed(0)
    checkpoint.save(
        path,
        {
            "spec": spec,
            "train_config": {},
            "state_dict": models.build(spec).state_dict(),
            "history": {},
            "preprocess": {"input_size": 48, "context": 0.25},
        },
    )
    return path


def test_landmarker_maps_predictions_into_the_photo(tiny_checkpoint):
    lm = Landmarker(tiny_checkpoint, device="cpu")
    gray = np.full((120, 160), 128, np.uint8)
    pts = lm.from_boxes(gray, [(40, 30, 50, 50), (-10, -10, 40, 40)])
    assert pts.shape == (2, 68, 2)
    # every prediction lies inside its crop: the box plus its 25 % margin
    assert (pts[0] >= 40 - 7).all() and (pts[0, :, 0] <= 90 + 7).all()
    assert lm.from_boxes(gray, []).shape == (0, 68, 2)


def test_evaluate_cli_and_skipped_images(ibug_root, tiny_checkpoint, tmp_path, capsys):
    src = (ibug_root / "labels_ibug_300W_test.xml").read_text()
    head, rest = src.split("<images>", 1)
    entries = rest.split("</image>")[:3]
    broken = tmp_path / "afw" / "broken.jpg"
    broken.parent.mkdir()
    broken.write_bytes(b"not a jpeg")
    xml = tmp_path / "mini.xml"
    import shutil

    for e in entries:
        name = e.split("file='", 1)[1].split("'", 1)[0]
        shutil.copy(ibug_root / name, tmp_path / name)
    entries.append(entries[0].replace(entries[0].split("file='", 1)[1].split("'", 1)[0], "afw/broken.jpg"))
    xml.write_text(head + "<images>" + "</image>".join(entries) + "</image></images></dataset>")
    out = tmp_path / "out"
    # the batch goes on past the broken image, lists it, and says so in its exit status
    assert (
        evaluate.main(
            ["--labels", str(xml), "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--device", "cpu"]
        )
        == 1
    )
    text = capsys.readouterr().out
    assert "faces scored:        3" in text and "NME:" in text and "AUC@10%" in text and "ms per face" in text
    assert "skipped 1 images" in text and "broken.jpg" in text
    assert (out / "ced.png").exists() and len((out / "per_face.csv").read_text().splitlines()) == 4
    assert (
        evaluate.main(
            [
                "--labels",
                str(xml),
                "--checkpoint",
                str(tiny_checkpoint),
                "--boxes",
                "detector",
                "--device",
                "cpu",
                "--no-flip",
                "--precision",
                "float32",
            ]
        )
        == 1
    )
    assert "missed faces count as failures" in capsys.readouterr().out


def test_predict_cli_handles_what_users_have(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image
    from skimage import data

    astro = Image.fromarray(data.astronaut())
    astro.convert("RGBA").save(tmp_path / "rgba.png")
    astro.convert("L").save(tmp_path / "gray.png")
    rotated = astro.rotate(90, expand=True)  # stored sideways, EXIF says turn it upright
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    rotated.save(tmp_path / "exif.jpg", exif=exif)
    astro.resize((3072, 3072)).save(tmp_path / "huge.jpg")
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    names = ["rgba.png", "gray.png", "exif.jpg", "huge.jpg", "coffee.jpg", "bad.jpg"]
    out = tmp_path / "out"
    # the batch goes on past the broken image, lists it, and says so in its exit status
    assert (
        predict.main(
            [str(tmp_path / n) for n in names]
            + ["--checkpoint", str(tiny_checkpoint), "--out", str(out), "--device", "cpu"]
        )
        == 1
    )
    text = capsys.readouterr().out
    assert (
        "coffee.jpg: 0 faces — no face found" in text
        and "bad.jpg: cannot decode" in text.split("skipped 1 image")[1]
    )
    for n in ("rgba", "gray", "exif", "huge"):
        record = json.loads((out / f"{n}_landmarks.json").read_text())
        assert (out / f"{n}_landmarks.png").exists()
        assert len(record["faces"]) >= 1 and len(record["faces"][0]["landmarks"]) == 68, n
        x, y, w, h = record["faces"][0]["box"]
        cx, cy = (x + w / 2) / record["width"], (y + h / 2) / record["height"]
        assert 0.3 < cx < 0.55 and 0.1 < cy < 0.4, n  # upright: her face in the upper middle


@pytest.mark.parametrize("decode", ["argmax", "soft_argmax"])
def test_heatmap_checkpoints_work_with_the_landmarker(tmp_path, decode):
    spec = {"kind": "heatmap_resnet18", "n_points": 68, "decode": decode, "backbone_from": None}
    path = tmp_path / "heat.pt"
    checkpoint.save(
        path,
        {
            "spec": spec,
            "state_dict": models.build(spec).state_dict(),
            "preprocess": {"input_size": 64, "context": 0.25},
        },
    )
    lm = Landmarker(path, device="cpu")
    gray = np.random.default_rng(0).integers(0, 255, (100, 120), dtype=np.uint8)
    boxes = [(30, 20, 50, 50), (0, 0, 30, 30), (60, 40, 40, 40)]
    pts = lm.from_boxes(gray, boxes)
    assert pts.shape == (3, 68, 2)
    for (x, _y, w, h), p in zip(boxes, pts):  # decoded points stay within each face's crop
        m = 0.625 * max(w, h)
        assert (p[:, 0] >= x + w / 2 - m - 1).all() and (p[:, 0] <= x + w / 2 + m + 1).all()


def test_landmarker_takes_flip_and_decoder_from_the_checkpoint(tmp_path):
    spec = {"kind": "heatmap_resnet18", "n_points": 68, "decode": "argmax", "logits": True}
    path = tmp_path / "heat.pt"
    checkpoint.save(
        path,
        {
            "spec": spec,
            "state_dict": models.build(spec).state_dict(),
            "preprocess": {"input_size": 64, "context": 0.25},
            "inference": {"flip": True, "decode": "soft_argmax", "beta": 2.0},
        },
    )
    lm = Landmarker(path, device="cpu")
    assert lm.flip and lm.model.decode == "soft_argmax" and lm.model.beta == 2.0
    assert not Landmarker(path, device="cpu", flip=False).flip
    assert Landmarker(path, device="cpu", precision="float32").dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        Landmarker(path, device="cpu", precision="half")


def test_detected_faces_are_re_cropped_by_their_first_landmarks(tiny_checkpoint, monkeypatch):
    lm = Landmarker(tiny_checkpoint, device="cpu")
    face = np.array([[45.0, 35.0], [85.0, 79.0]] * 34)  # landmarks whose box is (45, 35, 40, 44)
    seen = []

    def from_boxes(gray, boxes):
        seen.append([tuple(map(float, b)) for b in boxes])
        return np.stack([face, np.full((68, 2), 7.0)])  # the second face's prediction collapses

    monkeypatch.setattr(lm, "from_boxes", from_boxes)
    lm.from_detections(None, [(40, 30, 50, 50), (0, 0, 20, 20)])
    assert seen == [[(40, 30, 50, 50), (0, 0, 20, 20)], [(45, 35, 40, 44), (0, 0, 20, 20)]]
    seen.clear()
    lm.from_detections(None, [(40, 30, 50, 50), (0, 0, 20, 20)], passes=1)
    assert len(seen) == 1


class _Fixed(torch.nn.Module):
    """A 'network' that ignores the image and returns fixed unit coordinates."""

    def __init__(self, units):
        super().__init__()
        self.register_buffer("units", torch.as_tensor(units, dtype=torch.float32))
        self.n_points = len(units)

    def forward(self, x):
        return self.units.expand(len(x), -1, -1).clone()


def _symmetric_face_dataset(n=4, size=32):
    """Identical frames whose 68 labels are left/right symmetric (so a mirror image has the same labels)."""
    from helpers.datasets import Item, KeypointDataset

    rng = np.random.default_rng(0)
    p = rng.uniform(4, size - 5, (68, 2))
    mirrored = p[landmarks68.FLIP_PERMUTATION] * [-1, 1] + [size - 1, 0]
    points = ((p + mirrored) / 2).astype(np.float32)
    items = [Item(np.zeros((size, size), np.uint8), points, geometry.IDENTITY.copy()) for _ in range(n)]
    return KeypointDataset(items, (size, size), NONE, landmarks68.FLIP_PERMUTATION), points


def test_offset_is_the_mean_residual_and_added_after_flip_averaging():
    from helpers import inference

    ds, points = _symmetric_face_dataset()
    truth = geometry.to_unit(points, (32, 32))
    biased = _Fixed(truth + [0.05, -0.02])  # off by a fixed amount, as a habit of the labels would make it
    offset = inference.mean_residual(biased, ds)
    np.testing.assert_allclose(offset, np.tile([-0.05, 0.02], (68, 1)), atol=1e-6)
    assert inference.nme_percent(biased, ds, offset=offset) == pytest.approx(0.0, abs=1e-4)
    # mirroring moves the sideways part to the other side: flip averaging cancels x only ...
    flipped = inference.predict_batch(biased, torch.zeros(1, 1, 32, 32), landmarks68.FLIP_PERMUTATION)[
        0
    ].numpy()
    np.testing.assert_allclose(flipped - truth, np.tile([0.0, -0.02], (68, 1)), atol=1e-6)
    # ... and an offset is added after the averaging, so it is not mirrored away
    with_offset = inference.predict_batch(
        biased, torch.zeros(1, 1, 32, 32), landmarks68.FLIP_PERMUTATION, [0.03, 0.0]
    )[0].numpy()
    np.testing.assert_allclose(with_offset - flipped, np.tile([0.03, 0.0], (68, 1)), atol=1e-6)
    # both ways are exact once each has its own offset: a second pass buys nothing, so it stays off
    settings, scores = inference.choose_settings(biased, ds, ds, landmarks68.FLIP_PERMUTATION)
    assert settings["flip"] is False
    np.testing.assert_allclose(settings["offset"], offset, atol=1e-6)
    assert scores[("one pass", "network alone")] > 1.0 and scores[("one pass", "with offset")] < 1e-3
    # where a second pass does pay, it is kept, unless the model's time budget forbids it
    assert (
        inference.choose_settings(biased, ds, ds, landmarks68.FLIP_PERMUTATION, min_gain=-1.0)[0]["flip"]
        is True
    )
    assert (
        inference.choose_settings(
            biased, ds, ds, landmarks68.FLIP_PERMUTATION, min_gain=-1.0, allow_flip=False
        )[0]["flip"]
        is False
    )


def test_landmarker_adds_the_checkpoints_offset_in_crop_units(tiny_checkpoint, tmp_path):
    ckpt = checkpoint.load_checkpoint(tiny_checkpoint)
    ckpt["inference"] = {"offset": np.tile([0.1, -0.05], (68, 1)).tolist()}
    path = checkpoint.save(tmp_path / "offset.pt", ckpt)
    gray = np.random.default_rng(1).integers(0, 255, (120, 160), dtype=np.uint8)
    box = (40, 30, 48, 40)  # crop side 1.25 * 48 = 60 px: one unit is 30 px
    shifted = Landmarker(path, device="cpu", precision="float32").from_boxes(gray, [box])
    raw = Landmarker(path, device="cpu", precision="float32", offset=False).from_boxes(gray, [box])
    np.testing.assert_allclose(shifted - raw, np.tile([3.0, -1.5], (1, 68, 1)), atol=1e-3)
