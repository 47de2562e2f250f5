"""helpers.evaluate on bad input: a sentence, not a traceback, and never a silently wrong score."""

from helpers import evaluate
from tests.test_checkpoint import TINY, tiny
from tests.test_landmarks68 import dlib_xml


def run(args, capsys):
    code = evaluate.main([str(a) for a in args] + ["--device", "cpu"])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *needles):
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: "), err
    for n in needles:
        assert n in err, err


def test_a_one_point_model_is_not_scored_against_68_points(tmp_path, capsys):
    nose = tiny(
        tmp_path / "nose.pt", spec={**TINY, "n_points": 1}, preprocess={"input_size": 48, "context": 0.25}
    )
    one_line_error(
        *run(["--labels", dlib_xml(tmp_path / "l.xml"), "--checkpoint", nose], capsys)[::2], "1-point"
    )


def test_bad_labels(face_ckpt, tmp_path, capsys):
    one_line_error(
        *run(["--labels", dlib_xml(tmp_path / "nan.xml", x00="nan"), "--checkpoint", face_ckpt], capsys)[::2],
        "nan.xml",
        "non-finite",
    )
    one_line_error(*run(["--labels", tmp_path, "--checkpoint", face_ckpt], capsys)[::2], "is a folder")
    (tmp_path / "empty.xml").write_text("")
    one_line_error(
        *run(["--labels", tmp_path / "empty.xml", "--checkpoint", face_ckpt], capsys)[::2], "empty.xml"
    )
    one_line_error(
        *run(["--labels", dlib_xml(tmp_path / "none.xml", n_images=0), "--checkpoint", face_ckpt], capsys)[
            ::2
        ],
        "no labelled faces",
    )


def test_bad_checkpoints_and_out(face_ckpt, tmp_path, capsys):
    labels = dlib_xml(tmp_path / "l.xml")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(face_ckpt.read_bytes()[:1000])
    one_line_error(
        *run(["--labels", labels, "--checkpoint", cut], capsys)[::2], "cut.pt: not a readable checkpoint"
    )
    (tmp_path / "f").write_text("x")
    one_line_error(
        *run(["--labels", labels, "--checkpoint", face_ckpt, "--out", tmp_path / "f" / "o"], capsys)[::2],
        "cannot write there",
    )
