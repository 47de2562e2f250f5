import numpy as np
import pytest

from helpers import imm


def test_real_database_parses_and_splits(imm_root):
    samples = imm.load_imm(imm_root)
    assert len(samples) == 240
    train, val = imm.course_split(samples)
    assert (len(train), len(val)) == (192, 48)
    assert {s.person for s in train} == set(range(1, 33)) and {s.person for s in val} == set(range(33, 41))
    first = samples[0]
    assert (first.person, first.view, first.gender) == (1, 1, "m")
    assert first.points.shape == (58, 2)
    # first point of 01-1m.asf: 0.35763609, 0.64077979 of 640 x 480
    np.testing.assert_allclose(first.points[0], (0.35763609 * 640, 0.64077979 * 480), rtol=1e-6)
    genders = {s.gender for s in samples}
    assert genders == {"m", "f"}


def test_nose_tip_is_the_lowest_central_nose_point(imm_root):
    pts = np.stack([s.points for s in imm.load_imm(imm_root)])
    mean = pts.mean(0)
    nose = mean[list(imm.NOSE)]
    axis_x = mean[[39, 43]].mean(0)[0]  # midway between the mouth corners
    lower = nose[:, 1] > nose[:, 1].mean()
    central = np.where(lower, np.abs(nose[:, 0] - axis_x), np.inf)
    assert imm.NOSE_TIP == 47 + int(np.argmin(central))
    # the tip sits between the eyes horizontally and below them
    eyes = mean[list(imm.EYE_SUBJECT_LEFT) + list(imm.EYE_SUBJECT_RIGHT)]
    assert eyes[:, 0].min() < mean[imm.NOSE_TIP, 0] < eyes[:, 0].max()
    assert mean[imm.NOSE_TIP, 1] > eyes[:, 1].max()


def test_flip_permutation_maps_the_mean_face_onto_itself(imm_root):
    perm = imm.FLIP_PERMUTATION
    assert sorted(perm) == list(range(58)) and np.array_equal(perm[perm], np.arange(58))
    mean = np.stack([s.points for s in imm.load_imm(imm_root)]).mean(0)
    mean -= mean.mean(0)
    mirrored = mean * [-1, 1]
    err = np.linalg.norm(mirrored[perm] - mean, axis=1)
    assert err.max() < 6.0  # px at 640x480; without the permutation points land 10-190 px off
    assert np.linalg.norm(mirrored - mean, axis=1).max() > 100


ASF_HEAD = "######\n# header\n\n58\n\n# model points\n"


def _write(tmp_path, text, name="09-1m.asf"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_truncated_file_names_file_and_line(tmp_path):
    rows = "".join(f"0 0 0.5 0.5 {i} 0 0\n" for i in range(10))
    p = _write(tmp_path, ASF_HEAD + rows)
    with pytest.raises(ValueError, match=r"09-1m\.asf:16: truncated, 10 of 58"):
        imm.parse_asf(p)


def test_malformed_line_names_file_and_line(tmp_path):
    rows = [f"0 0 0.5 0.5 {i} 0 0" for i in range(58)]
    rows[3] = "0 0 abc 0.5 3 0 0"
    p = _write(tmp_path, ASF_HEAD + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"09-1m\.asf:10: malformed point line"):
        imm.parse_asf(p)


def test_wrong_point_count_and_bad_name(tmp_path):
    p = _write(tmp_path, "# x\n12\n")
    with pytest.raises(ValueError, match=r"09-1m\.asf:2: expected 58 points"):
        imm.parse_asf(p)
    with pytest.raises(ValueError, match="not an IMM file name"):
        imm.parse_name("face.asf")


def test_missing_folder_names_download_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m helpers.download imm"):
        imm.load_imm(tmp_path)
