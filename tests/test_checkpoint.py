"""The checkpoint format: nothing runs on load, every bad file is one line, no absolute paths."""

import pickle
import shutil

import numpy as np
import pytest
import torch

from helpers import checkpoint, models, train
from helpers.checkpoint import CheckpointError
from helpers.landmarker import Landmarker
from tests.test_train import blob_dataset

TINY = {"kind": "soft_argmax", "n_points": 68, "width": 4, "dilations": (2,)}


def tiny(path, spec=TINY, **extra):
    torch.manual_seed(0)
    return checkpoint.save(path, {"spec": spec, "state_dict": models.build(spec).state_dict(), **extra})


class _Payload:
    """What a hostile checkpoint carries: unpickling it would create a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_crafted_checkpoint_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"spec": TINY, "state_dict": {}, "payload": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil.pt: .*refused"):
        checkpoint.load_checkpoint(path)
    with pytest.raises(CheckpointError):
        Landmarker(path, device="cpu")
    assert not marker.exists()
    with open(tmp_path / "plain.pkl", "wb") as fh:  # a bare pickle, not even torch's zip format
        pickle.dump(_Payload(marker), fh)
    with pytest.raises(CheckpointError, match="plain.pkl"):
        checkpoint.load_checkpoint(tmp_path / "plain.pkl")
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, why",
    [
        (lambda p: p.write_bytes(b""), "not a readable checkpoint"),
        (lambda p: p.write_text("hello, I am a text file\n"), "not a readable checkpoint"),
        (lambda p: torch.save(torch.zeros(3), p), "not a facial-keypoints checkpoint"),
        (lambda p: torch.save({"state_dict": {}}, p), "not a facial-keypoints checkpoint"),
        (
            lambda p: torch.save({"spec": {"kind": "vgg99"}, "state_dict": {}}, p),
            "unknown model kind 'vgg99'",
        ),
    ],
)
def test_foreign_and_empty_files_are_one_line(tmp_path, content, why):
    path = tmp_path / "x.pt"
    content(path)
    with pytest.raises(CheckpointError, match=why) as err:
        checkpoint.load_checkpoint(path)
    assert "x.pt" in str(err.value) and "\n" not in str(err.value)


def test_a_truncated_checkpoint_is_one_line(tmp_path):
    path = tiny(tmp_path / "t.pt", preprocess={"input_size": 48, "context": 0.25})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"t.pt: not a readable checkpoint") as err:
        checkpoint.load_checkpoint(path)
    assert "\n" not in str(err.value)


def test_weights_that_do_not_fit_the_spec(tmp_path):
    other = {**TINY, "width": 8}
    checkpoint.save(tmp_path / "w.pt", {"spec": TINY, "state_dict": models.build(other).state_dict()})
    with pytest.raises(CheckpointError, match="do not fit its own model spec"):
        checkpoint.load_model(tmp_path / "w.pt", device="cpu")


@pytest.mark.parametrize(
    "change,why",
    [({"stride": 3}, "features start at"), ({"depth": 5}, "unexpected keyword argument 'depth'")],
)
def test_a_spec_this_code_cannot_build_is_one_line_naming_the_file(tmp_path, change, why):
    spec = {"kind": "heatmap_efficientnet_lite", "n_points": 68, "pretrained": False}
    path = tmp_path / "spec.pt"
    checkpoint.save(path, {"spec": {**spec, **change}, "state_dict": models.build(spec).state_dict()})
    with pytest.raises(CheckpointError, match=f"spec.pt: its model spec cannot be built here.*{why}") as err:
        checkpoint.load_model(path, device="cpu")
    assert "\n" not in str(err.value)


def test_a_folder_or_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder"):
        checkpoint.load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        checkpoint.load_checkpoint(tmp_path / "nope.pt")


def test_save_keeps_plain_values_and_refuses_absolute_paths(tmp_path):
    path = tiny(
        tmp_path / "p.pt",
        inference={"offset": np.zeros((68, 2), np.float32), "beta": np.float64(2.0)},
        calibration={"dx": np.float32(0.5)},
    )
    ckpt = checkpoint.load_checkpoint(path)  # weights_only: it loads only if everything is plain
    assert ckpt["format"] == checkpoint.FORMAT and ckpt["inference"]["beta"] == 2.0
    assert ckpt["inference"]["offset"] == [[0.0, 0.0]] * 68 and ckpt["spec"]["dilations"] == (2,)
    with pytest.raises(ValueError, match="absolute path"):
        checkpoint.save(
            tmp_path / "a.pt", {"spec": {**TINY, "backbone_from": str(tmp_path / "b.pt")}, "state_dict": {}}
        )
    with pytest.raises(TypeError, match="checkpoint.extra is a object"):
        tiny(tmp_path / "o.pt", extra=object())
    assert not list(tmp_path.glob("*.partial"))


def test_update_merges_settings(tmp_path):
    path = tiny(tmp_path / "u.pt", inference={"flip": True})
    checkpoint.update(path, inference={"decode": "argmax"}, calibration={"dx": 0.1, "dy": 0.2, "scale": 0.9})
    ckpt = checkpoint.load_checkpoint(path)
    assert ckpt["inference"] == {"flip": True, "decode": "argmax"} and ckpt["calibration"]["scale"] == 0.9
    # a calibration is replaced whole: one from the older, flat layout must not mix with stages
    staged = {"hog": {"dx": 0.0, "dy": 0.1, "scale": 1.0}}
    assert checkpoint.update(path, calibration=staged)["calibration"] == staged


def test_tools_refuse_other_kinds_of_model_with_a_sentence(tmp_path):
    nose = tiny(
        tmp_path / "nose.pt", spec={**TINY, "n_points": 1}, preprocess={"input_size": 48, "context": 0.25}
    )
    with pytest.raises(
        CheckpointError, match=r"nose.pt: a 1-point soft_argmax model; this tool needs a 68-point"
    ):
        Landmarker(nose, device="cpu")
    bare = tiny(tmp_path / "bare.pt")  # a 68-point model without its crop settings: no silent default size
    with pytest.raises(CheckpointError, match="without its face-crop settings"):
        Landmarker(bare, device="cpu")
    assert checkpoint.n_points(checkpoint.load_checkpoint(bare)) == 68
    assert checkpoint.n_points({"spec": {"kind": "resnet18"}}) == 68  # the class default


def test_a_moved_checkout_reuses_its_runs(tmp_path, monkeypatch):
    """Runs name their backbone by file name, so copying the folder of runs elsewhere keeps them."""
    first, moved = tmp_path / "a", tmp_path / "b"
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", first)
    monkeypatch.delenv("FKP_SMOKE", raising=False)
    data, val = blob_dataset(8), blob_dataset(8, seed=1)
    cfg = train.TrainConfig(epochs=1, lr=1e-3, batch_size=8)
    train.fit({"kind": "resnet18", "n_points": 1}, data, val, "part3", cfg, progress=False, device="cpu")
    spec = {"kind": "heatmap_resnet18", "n_points": 1, "backbone_from": "part3.pt", "logits": True}
    heat = train.TrainConfig(epochs=1, lr=1e-3, batch_size=8, loss="heatmap_zero_one")
    _, trained = train.fit(spec, data, val, "part4", heat, progress=False, device="cpu")
    stored = checkpoint.load_checkpoint(first / "part4.pt")
    assert stored["backbone_origin"]["checkpoint"] == "part3.pt" and str(tmp_path) not in repr(stored)
    shutil.copytree(first, moved)
    shutil.rmtree(first)
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", moved)
    _, again = train.fit(spec, data, val, "part4", heat, progress=False, device="cpu")
    assert again.seconds == trained.seconds  # loaded, not retrained
