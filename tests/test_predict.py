"""helpers.predict on bad input: each case ends in a result or one line naming the file."""

import json

import numpy as np
import torch
from PIL import Image
from skimage import data

from helpers import predict
from tests.test_checkpoint import TINY, _Payload, tiny
from tests.test_images import png_header_only


def run(args, capsys):
    code = predict.main([str(a) for a in args] + ["--device", "cpu"])
    out, err = capsys.readouterr()
    return code, out, err


def test_same_file_names_in_two_folders_keep_both_results(face_ckpt, tmp_path, capsys):
    for folder, shade in (("a", 60), ("b", 200)):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.full((40, 50), shade, np.uint8)).save(tmp_path / folder / "me.jpg")
    out = tmp_path / "out"
    code, _, _ = run(
        [tmp_path / "a" / "me.jpg", tmp_path / "b" / "me.jpg", "--checkpoint", face_ckpt, "--out", out],
        capsys,
    )
    assert code == 0
    records = {p.name: json.loads(p.read_text())["image"] for p in out.glob("*.json")}
    assert records == {
        "a_me.jpg_landmarks.json": str(tmp_path / "a" / "me.jpg"),
        "b_me.jpg_landmarks.json": str(tmp_path / "b" / "me.jpg"),
    }
    assert len(list(out.glob("*.png"))) == 2


def test_out_is_checked_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, out, err = run(
        [tmp_path / "any.jpg", "--checkpoint", tmp_path / "missing.pt", "--out", tmp_path / "file"], capsys
    )
    assert code == 1 and err.count("\n") == 1 and "file: exists and is not a folder" in err and not out


def test_a_hostile_checkpoint_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "pwned"
    torch.save({"spec": TINY, "state_dict": {}, "x": _Payload(marker)}, tmp_path / "evil.pt")
    Image.fromarray(data.astronaut()).save(tmp_path / "a.jpg")
    code, _, err = run(
        [tmp_path / "a.jpg", "--checkpoint", tmp_path / "evil.pt", "--out", tmp_path / "o"], capsys
    )
    assert code == 1 and err.count("\n") == 1 and "evil.pt" in err and not marker.exists()


def test_a_nose_tip_checkpoint_is_refused_with_what_it_is(tmp_path, capsys):
    nose = tiny(
        tmp_path / "nose.pt", spec={**TINY, "n_points": 1}, preprocess={"input_size": 48, "context": 0.25}
    )
    Image.fromarray(data.astronaut()).save(tmp_path / "a.jpg")
    code, _, err = run([tmp_path / "a.jpg", "--checkpoint", nose, "--out", tmp_path / "o"], capsys)
    assert (
        code == 1
        and err.count("\n") == 1
        and "a 1-point soft_argmax model; this tool needs a 68-point" in err
    )
    assert not list((tmp_path / "o").glob("*.json"))


def test_a_batch_goes_past_huge_and_unwritable_files(face_ckpt, tmp_path, capsys):
    Image.fromarray(data.astronaut()).save(tmp_path / "good.jpg")
    Image.fromarray(data.astronaut()).save(tmp_path / "blocked.jpg")
    png_header_only(tmp_path / "bomb.png", 20_000, 20_000)
    sixteen = (data.astronaut().mean(2) * 257).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "deep.png")
    out = tmp_path / "out"
    (out / "blocked_landmarks.png").mkdir(parents=True)  # the result cannot be written there
    names = ["good.jpg", "bomb.png", "blocked.jpg", "deep.png"]
    code, text, _ = run([tmp_path / n for n in names] + ["--checkpoint", face_ckpt, "--out", out], capsys)
    assert code == 1
    assert (
        "skipped 2 image(s)" in text
        and "bomb.png: " in text
        and "blocked_landmarks.png: could not write" in text
    )
    assert (out / "good_landmarks.json").exists()
    deep = json.loads((out / "deep_landmarks.json").read_text())
    assert len(deep["faces"]) >= 1  # a 16-bit photo is the astronaut, not a white page


def test_predict_cli_handles_what_users_have(face_ckpt, tmp_path, capsys):
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
            + ["--checkpoint", str(face_ckpt), "--out", str(out), "--device", "cpu"]
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


def test_detector_stages_are_chosen_on_the_command_line_and_a_bad_one_is_named(face_ckpt, tmp_path, capsys):
    Image.fromarray(data.astronaut()).save(tmp_path / "astro.png")
    common = [tmp_path / "astro.png", "--checkpoint", face_ckpt, "--out", tmp_path / "out"]
    code, out, _ = run(common + ["--detector-stages", "haar"], capsys)  # OpenCV alone, no dlib
    assert code == 0 and "astro.png: 1 face" in out
    code, _, err = run(common + ["--detector-stages", "hog,dnn"], capsys)
    assert code == 1 and err.strip() == "error: unknown detector stage 'dnn'; known: hog, hog_upsampled, haar"
