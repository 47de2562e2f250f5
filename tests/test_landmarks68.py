from pathlib import Path

import numpy as np
import pytest

from helpers import landmarks68 as lm68
from helpers.landmarks68 import load_dlib_xml, load_youtube_csv, parse_pts


def test_real_300w_xml_and_pts_agree(ibug_root):
    faces = lm68.load_dlib_xml(ibug_root / "labels_ibug_300W_test.xml")
    assert len(faces) == 337 and all(f.points.shape == (68, 2) for f in faces)
    f = faces[0]
    assert f.image_path.exists()
    pts = lm68.parse_pts(f.image_path.with_suffix(".pts"))
    # the XML holds the .pts points rounded to integers
    assert np.abs(np.round(pts) - f.points).max() <= 1.0
    left, top, w, h = f.box
    assert abs(left - f.points[:, 0].min()) <= 1 and abs(top - f.points[:, 1].min()) <= 1


def test_flip_permutation_is_a_symmetric_involution(ibug_root):
    perm = lm68.FLIP_PERMUTATION
    assert np.array_equal(perm[perm], np.arange(68))
    faces = lm68.load_dlib_xml(ibug_root / "labels_ibug_300W_train.xml")
    shapes = np.stack([(f.points - f.points.mean(0)) / f.box[2] for f in faces])
    mean = shapes.mean(0)
    mirrored = mean * [-1, 1]
    assert np.abs(mirrored[perm] - mean).max() < 0.03 < np.abs(mirrored - mean).max()
    assert lm68.OUTER_EYE_CORNERS == (36, 45) and perm[36] == 45


def test_youtube_csv(youtube_root):
    faces = lm68.load_youtube_csv(youtube_root / "training_frames_keypoints.csv", youtube_root / "training")
    assert len(faces) == 3531 and faces[0].image_path.name == "Luis_Fonsi_21.jpg"
    np.testing.assert_allclose(faces[0].points[0], [45, 98])


def test_photo_of_drops_only_the_face_index():
    face = lambda name: lm68.FaceRecord(Path("300w") / name, (0, 0, 1, 1), np.zeros((68, 2)))
    assert lm68.photo_of(face("helen/trainset/100040721_2.jpg")) == str(Path("300w/helen/trainset/100040721"))
    assert lm68.photo_of(face("ibug/image_003_1.jpg")) == str(Path("300w/ibug/image_003"))
    # LFPW: one face per photo, numbered with four digits; each is its own photo
    lfpw = {lm68.photo_of(face(f"lfpw/trainset/image_{k:04d}.jpg")) for k in (1, 2, 10)}
    assert len(lfpw) == 3
    # one name in two folders is two photos
    assert lm68.photo_of(face("a/1_1.jpg")) != lm68.photo_of(face("b/1_1.jpg"))


def test_split_by_photo_keeps_photos_whole_and_holds_out_both_sources(ibug_root):
    faces = lm68.load_dlib_xml(ibug_root / "labels_ibug_300W_train.xml")
    lfpw = lambda fs: sum("lfpw" in f.image_path.parts for f in fs)
    for seed in range(20):  # seed 17 once sent all of LFPW to validation
        keep, held = lm68.split_by_group(faces, 0.1, lm68.photo_of, seed)
        assert len(keep) + len(held) == len(faces)
        assert not {lm68.photo_of(f) for f in keep} & {lm68.photo_of(f) for f in held}
        assert 0.05 < len(held) / len(faces) < 0.15
        assert 0.05 < lfpw(held) / lfpw(faces) < 0.15  # LFPW in validation as in training
    # faces of one photo really do share it: Helen photos with two faces exist and stay together
    assert len({lm68.photo_of(f) for f in faces}) < len(faces)


def test_ibug_splits_hold_out_youtube_people_too(ibug_root, youtube_root):
    from helpers import faces

    splits = faces.ibug_splits(ibug_root, youtube_root, 0.1, seed=0)
    person = lm68.person_of
    youtube_train = [f for f in splits.train if f.image_path.parent.name in ("training", "test")]
    assert len(youtube_train) + len(splits.youtube_val) == 3531 + 770  # every frame, one side or the other
    assert not ({person(f) for f in youtube_train} & {person(f) for f in splits.youtube_val})
    assert 0.05 < len(splits.youtube_val) / (3531 + 770) < 0.15
    assert not set(map(id, splits.val)) & set(map(id, splits.train))


XML = """<?xml version='1.0'?><dataset><images>
<image file='a.jpg'><box top='1' left='2' width='30' height='40'>{parts}</box></image>
</images></dataset>"""


def test_malformed_xml_names_file_and_entry(tmp_path):
    p = tmp_path / "bad.xml"
    p.write_text(XML.format(parts="".join(f"<part name='{i:02d}' x='1' y='2'/>" for i in range(60))))
    with pytest.raises(ValueError, match=r"bad.xml: image 'a.jpg' box 0: expected parts 00-67, found 60"):
        lm68.load_dlib_xml(p)
    p.write_text(
        XML.format(
            parts="".join(f"<part name='{i:02d}' x='1' y='{'q' if i == 7 else 2}'/>" for i in range(68))
        )
    )
    with pytest.raises(ValueError, match=r"bad.xml: image 'a.jpg' box 0: non-numeric"):
        lm68.load_dlib_xml(p)
    p.write_text("<dataset><images><image file='a.jpg'>")
    with pytest.raises(ValueError, match=r"bad.xml: malformed XML"):
        lm68.load_dlib_xml(p)


def test_malformed_pts_and_csv(tmp_path):
    p = tmp_path / "x.pts"
    p.write_text("version: 1\nn_points: 68\n{\n" + "1 2\n" * 67 + "}\n")
    with pytest.raises(ValueError, match=r"x.pts: expected 68 points, found 67"):
        lm68.parse_pts(p)
    p.write_text("version: 1\nn_points: 68\n{\n" + "1 2\n" * 67 + "1 z\n}\n")
    with pytest.raises(ValueError, match=r"x.pts: non-numeric point '1 z'"):
        lm68.parse_pts(p)
    c = tmp_path / "k.csv"
    c.write_text("," + ",".join(map(str, range(136))) + "\nf.jpg," + ",".join(["1"] * 135 + ["x"]) + "\n")
    with pytest.raises(ValueError, match=r"k.csv:2: non-numeric coordinate in row for 'f.jpg'"):
        lm68.load_youtube_csv(c, tmp_path)


# Label files that would otherwise score as something they are not: empty, non-finite, a folder.
def dlib_xml(path, x00="10", box_left="5", n_images=1):
    parts = "".join(f"<part name='{i:02d}' x='{x00 if i == 0 else 20 + i}' y='{30 + i}'/>" for i in range(68))
    images = "".join(
        f"<image file='a{k}.jpg'><box top='1' left='{box_left}' width='50' height='60'>{parts}</box></image>"
        for k in range(n_images)
    )
    path.write_text(f"<?xml version='1.0'?><dataset><images>{images}</images></dataset>")
    return path


def test_a_valid_file_parses(tmp_path):
    faces = load_dlib_xml(dlib_xml(tmp_path / "ok.xml", n_images=2))
    assert len(faces) == 2 and faces[0].points.shape == (68, 2) and faces[0].points[0, 0] == 10


@pytest.mark.parametrize("field", ["x00", "box_left"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_coordinates_name_the_file_and_entry(tmp_path, field, value):
    path = dlib_xml(tmp_path / "bad.xml", **{field: value})
    with pytest.raises(ValueError, match=r"bad.xml: image 'a0.jpg' box 0, (part 00|the box): non-finite"):
        load_dlib_xml(path)


def test_empty_label_files_are_errors(tmp_path):
    (tmp_path / "empty.xml").write_text("")
    with pytest.raises(ValueError, match="empty.xml: malformed XML"):
        load_dlib_xml(tmp_path / "empty.xml")
    with pytest.raises(ValueError, match="none.xml: no labelled faces"):
        load_dlib_xml(dlib_xml(tmp_path / "none.xml", n_images=0))
    (tmp_path / "empty.csv").write_text("name,x0\n")
    with pytest.raises(ValueError, match="empty.csv: no labelled rows"):
        load_youtube_csv(tmp_path / "empty.csv", tmp_path)


def test_a_folder_given_as_labels(tmp_path):
    dlib_xml(tmp_path / "labels_ibug_300W_test.xml")
    with pytest.raises(
        ValueError,
        match=r"is a folder; give the dlib XML label file itself \(it holds labels_ibug_300W_test.xml\)",
    ):
        load_dlib_xml(tmp_path)


def test_non_finite_pts_and_csv(tmp_path):
    rows = [f"{10 + i} {20 + i}" for i in range(68)]
    rows[7] = "nan 3"
    (tmp_path / "a.pts").write_text("version: 1\nn_points: 68\n{\n" + "\n".join(rows) + "\n}\n")
    with pytest.raises(ValueError, match="a.pts: point 7 has a non-finite"):
        parse_pts(tmp_path / "a.pts")
    values = np.arange(136, dtype=float).astype(str)
    values[5] = "nan"
    (tmp_path / "k.csv").write_text(
        "name," + ",".join(f"c{i}" for i in range(136)) + "\nf.jpg," + ",".join(values) + "\n"
    )
    with pytest.raises(ValueError, match=r"k.csv:2 \(f.jpg\): non-finite"):
        load_youtube_csv(tmp_path / "k.csv", tmp_path)


def test_turn_index_is_zero_for_a_frontal_face_and_grows_with_the_turn():
    frontal = np.zeros((68, 2))
    frontal[0], frontal[16], frontal[30] = (-1, 0), (1, 0), (0, 0.5)
    turned = frontal.copy()
    turned[30] = (0.6, 0.5)  # the nose moves towards one end of the jaw
    assert lm68.turn_index(frontal) == pytest.approx(0.0)
    assert lm68.turn_index(np.stack([turned, turned * [-1, 1]])) == pytest.approx([0.447, 0.447], abs=0.001)
