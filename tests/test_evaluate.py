"""helpers.evaluate on bad input: a sentence, not a traceback, and never a silently wrong score."""

from helpers import evaluate
from helpers.landmarker import Landmarker
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
    one_line_error(
        *run(["--labels", labels, "--checkpoint", face_ckpt, "--passes", 0], capsys)[::2],
        "passes must be at least 1",
    )


def test_evaluate_cli_and_skipped_images(ibug_root, face_ckpt, tmp_path, capsys):
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
            ["--labels", str(xml), "--checkpoint", str(face_ckpt), "--out", str(out), "--device", "cpu"]
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
                str(face_ckpt),
                "--boxes",
                "detector",
                "--device",
                "cpu",
                "--no-flip",
                "--precision",
                "float32",
                "--runtime",
                "torch",
            ]
        )
        == 1
    )
    assert "missed faces count as failures" in capsys.readouterr().out


def test_cpu_ms_by_setting_times_each_engine_with_and_without_flip(ibug_root, face_ckpt):
    from helpers.landmarks68 import load_dlib_xml

    faces = load_dlib_xml(ibug_root / "labels_ibug_300W_test.xml")
    timings = evaluate.cpu_ms_by_setting(face_ckpt, faces, n_faces=2, passes=1)
    torch_default = str(Landmarker(face_ckpt, device="cpu", runtime="torch").dtype).removeprefix("torch.")
    assert {k[0] for k in timings} == {"onnxruntime", "float32", torch_default}
    assert {k[1] for k in timings} == {"flip", "one pass"}
    assert all(0 < ms < 10_000 for ms in timings.values())


def test_cpu_ms_by_setting_takes_the_settings_passes_in_turn(ibug_root, face_ckpt, monkeypatch):
    """Round by round, so that a slow spell of a shared machine falls on every setting alike."""
    from helpers.landmarks68 import load_dlib_xml

    faces = load_dlib_xml(ibug_root / "labels_ibug_300W_test.xml")
    calls, real = [], Landmarker.from_boxes

    def recorded(self, gray, boxes):
        calls.append((self.runtime, self.dtype, self.flip))
        return real(self, gray, boxes)

    monkeypatch.setattr(Landmarker, "from_boxes", recorded)
    evaluate.cpu_ms_by_setting(face_ckpt, faces, n_faces=2, passes=3)
    settings = list(dict.fromkeys(calls))
    assert len(settings) == 6 and calls[:6] == settings  # one warm-up call each, then the rounds
    assert calls[6:] == [s for _ in range(3) for s in settings for _ in range(2)]


def test_choose_passes_keeps_the_fewest_passes_with_the_lowest_nme(face_ckpt, monkeypatch):
    lm = Landmarker(face_ckpt, device="cpu")
    nme = {1: 5.0, 2: 4.2, 3: 4.2, 4: 4.3}  # 2 and 3 tie: the cheaper one is kept
    asked = []

    def fake(faces, landmarker, boxes, progress, passes):
        assert boxes == "detector" and landmarker is lm
        asked.append(passes)
        return {"summary": {"nme_percent": nme[passes]}}

    monkeypatch.setattr(evaluate, "evaluate", fake)
    chosen, scores = evaluate.choose_passes(["a face"], lm)
    assert chosen == 2 and scores == nme and asked == [1, 2, 3, 4]
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: {"summary": {}})  # no face detected
    assert evaluate.choose_passes(["a face"], lm, (3, 1))[0] == 1
