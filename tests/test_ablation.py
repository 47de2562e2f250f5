"""The ablation tool's settings: parsed and typed as BASE is, named by everything that shapes a run."""

import json

import pytest

from helpers import ablation, checkpoint, detect
from helpers.landmarks68 import load_dlib_xml


def test_variants_are_typed_like_the_base_settings():
    assert ablation.parse_variant("sigma=0.75,stride=2") == {"sigma": 0.75, "stride": 2}
    assert ablation.parse_variant("pretrained=false") == {"pretrained": False}
    with pytest.raises(ValueError, match="KEY one of"):
        ablation.parse_variant("sgima=1")
    with pytest.raises(ValueError, match="stride takes int values"):
        ablation.parse_variant("stride=two")


def test_a_run_is_named_by_its_settings_crops_size_and_seed():
    base = dict(ablation.BASE)
    name = ablation.run_name(base, 12000, 112, 0)
    assert name == ablation.run_name(dict(base), 12000, 112, 0)
    others = [
        ablation.run_name({**base, "sigma": 0.75}, 12000, 112, 0),
        ablation.run_name(base, 4000, 112, 0),
        ablation.run_name(base, 12000, 160, 0),
        ablation.run_name(base, 12000, 112, 1),
    ]
    assert name not in others and len(set(others)) == 4


@pytest.mark.parametrize("added, other", [("context", 0.15), ("point_weight", 3.0), ("model", "resnet18")])
def test_runs_made_before_a_setting_existed_keep_their_names_and_records(added, other, tmp_path):
    before = {k: v for k, v in ablation.BASE.items() if k != added}
    assert ablation.run_name(ablation.BASE, 12000, 112, 0) == ablation.run_name(before, 12000, 112, 0)
    assert ablation.run_name({**ablation.BASE, added: other}, 12000, 112, 0) != ablation.run_name(
        before, 12000, 112, 0
    )
    if added != "model":  # the model is chosen with --model, not as a variant
        assert ablation.parse_variant(f"{added}={other}") == {added: other}
    # a rerun of a run recorded before the setting existed replaces that record
    path = tmp_path / "ablation.json"
    entry = {"crops": 100, "input": 112, "seed": 0}
    ablation.merge_results(path, [{**entry, "settings": before, "val_nme_percent": 5.0}])
    merged = ablation.merge_results(path, [{**entry, "settings": ablation.BASE, "val_nme_percent": 4.9}])
    assert [e["val_nme_percent"] for e in merged] == [4.9]
    merged = ablation.merge_results(
        path, [{**entry, "settings": {**ablation.BASE, added: other}, "val_nme_percent": 4.7}]
    )
    assert sorted(e["val_nme_percent"] for e in merged) == [4.7, 4.9]


def test_part_3s_runs_have_their_own_base_spec_and_names():
    resnet = ablation.RESNET18
    assert ablation.parse_variant("ema=2,lr=0.001", resnet) == {"ema": 2.0, "lr": 0.001}
    for wrong in ("sigma=1", "model=efficientnet_lite"):  # a heatmap setting; the model itself
        with pytest.raises(ValueError, match="KEY one of lr, batch, loss, ema, context"):
            ablation.parse_variant(wrong, resnet)
    assert ablation.describe(resnet) == "resnet18: base"
    assert ablation.describe({**resnet, "lr": 0.004}) == "resnet18: lr=0.004"
    assert ablation.describe({**ablation.BASE, "lr": 0.004}) == "lr=0.004"
    assert ablation.model_spec(resnet) == {"kind": "resnet18", "n_points": 68, "pretrained": False}
    assert ablation.run_name(resnet, 12000, 112, 0) != ablation.run_name(ablation.BASE, 12000, 112, 0)


def test_part_3s_pretrained_regression_is_the_resnets_training_on_another_encoder():
    """Its runs are recorded beside the ResNet18's, train as it does, and name the encoder."""
    lite, resnet = ablation.LITE_REGRESSION, ablation.RESNET18
    assert {k: v for k, v in lite.items() if k not in ("model", "variant", "pretrained")} == {
        k: v for k, v in resnet.items() if k != "model"
    }
    assert ablation.OUT["lite_regression"] == ablation.OUT["resnet18"]
    assert ablation.parse_variant("pretrained=false,variant=1", lite) == {"pretrained": False, "variant": 1}
    assert ablation.describe({**lite, "pretrained": False}) == "lite_regression: pretrained=False"
    spec = ablation.model_spec({**lite, "variant": 1})
    assert spec == {"kind": "regression_efficientnet_lite", "n_points": 68, "variant": 1, "pretrained": True}
    names = {ablation.run_name(s, 12000, 112, 0) for s in (lite, resnet, {**lite, "pretrained": False})}
    assert len(names) == 3


def test_a_notebook_reads_the_runs_scored_on_its_own_validation_faces(tmp_path):
    assert ablation.recorded(tmp_path / "none.json") == []
    lite, resnet = ablation.LITE_REGRESSION, ablation.RESNET18

    def entry(settings, input_size, faces):
        return {"settings": settings, "crops": 100, "input": input_size, "seed": 0, "val_faces": faces}

    ours = [entry(lite, 112, 164), entry(resnet, 112, 164)]
    others = [
        entry(resnet, 112, 87),  # the old split
        entry(resnet, 160, 164),  # other crops
        entry(ablation.BASE, 112, 164),  # Part 4's model
        {**entry(lite, 112, 164), "seed": 1},  # another seed of the same run
        {k: v for k, v in entry(resnet, 112, 0).items() if k != "val_faces"},  # recorded before the count
    ]
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(others[:2] + ours + others[2:]))
    assert ablation.scored_on(ablation.recorded(path), ("resnet18", "lite_regression"), 112, 164) == ours
    assert ablation.scored_on(ablation.recorded(path), ("lite_regression",), 112, 164, seed=1) == [others[-2]]


def test_part_3s_runs_are_keyed_by_encoder_weights_and_length_and_compared_where_all_ran(tmp_path):
    lite, resnet = ablation.LITE_REGRESSION, ablation.RESNET18

    def entry(settings, epochs, nme):
        return {
            "settings": settings,
            "crops": 100,
            "input": 112,
            "seed": 0,
            "val_faces": 164,
            "epochs": epochs,
            "val_nme_percent": nme,
            "minutes": 1.0,
            "cpu_ms_per_face": {"onnxruntime, one pass": 3.0},
        }

    entries = [
        entry(lite, 30, 4.7),
        entry({**lite, "pretrained": False}, 30, 6.5),
        entry(resnet, 30, 5.6),
        entry(lite, 60, 4.4),
        entry({**resnet, "lr": 0.004}, 30, 5.9),  # a variant: not one of the bases
    ]
    runs = ablation.regression_runs(entries, 112, 164)
    assert set(runs) == {
        ("EfficientNet-Lite0", True, 30),
        ("EfficientNet-Lite0", False, 30),
        ("ResNet18", False, 30),
        ("EfficientNet-Lite0", True, 60),
    }
    assert runs[("ResNet18", False, 30)] == {"val NME %": 5.6, "minutes": 1.0, "ms per face": 3.0}
    models = list(ablation.REGRESSION_RUNS)
    assert ablation.longest_shared_length(runs, models) == 30
    assert ablation.longest_shared_length(runs, [("EfficientNet-Lite0", True)]) == 60
    assert ablation.longest_shared_length({}, models) is None
    assert ablation.lengths(runs, ("EfficientNet-Lite0", True)) == [30, 60]
    assert ablation.lengths(runs, ("ResNet18", True)) == []


def test_a_run_refuses_crops_of_another_context():
    class Crops:
        preprocess = {"input_size": 112, "context": 0.25}

    with pytest.raises(ValueError, match="context 0.25, the run asks for 0.15"):
        ablation.equal_length_run({**ablation.BASE, "context": 0.15}, Crops(), 100)


def test_the_spec_is_notebook_04s_model_with_the_overrides():
    spec = ablation.model_spec({**ablation.BASE, "stride": 2})
    assert spec["kind"] == "heatmap_efficientnet_lite" and spec["stride"] == 2 and spec["logits"]
    assert "sigma" not in spec and "lr" not in spec  # training settings are not the model's


def test_results_merge_by_run_and_replace_a_rerun(tmp_path):
    path = tmp_path / "ablation.json"
    entry = {"settings": ablation.BASE, "crops": 100, "input": 112, "seed": 0, "val_nme_percent": 5.0}
    ablation.merge_results(path, [entry, {**entry, "seed": 1, "val_nme_percent": 5.1}])
    merged = ablation.merge_results(path, [{**entry, "val_nme_percent": 4.9}])
    assert sorted((e["seed"], e["val_nme_percent"]) for e in merged) == [(0, 4.9), (1, 5.1)]
    assert json.loads(path.read_text()) == merged
    detector = {"val_nme_percent_detector_by_passes": {"1": 6.0}}
    ablation.merge_results(path, [{**entry, **detector}])
    merged = ablation.merge_results(path, [{**entry, "val_nme_percent": 4.8}])  # a rerun without --detector
    rerun = next(e for e in merged if e["seed"] == 0)
    assert rerun["val_nme_percent"] == 4.8 and rerun["val_nme_percent_detector_by_passes"] == {"1": 6.0}
    # a run scored on another validation set is kept beside the old one; a record without the
    # field is from the old split
    merged = ablation.merge_results(path, [{**entry, "val_faces": 164, "val_nme_percent": 4.5}])
    val_faces = lambda e: e.get("val_faces", "old split")
    assert sorted((str(val_faces(e)), e["val_nme_percent"]) for e in merged if e["seed"] == 0) == [
        ("164", 4.5),
        ("old split", 4.8),
    ]
    again = {**entry, "val_faces": ablation.VAL_FACES_BEFORE_LFPW, "val_nme_percent": 4.7}
    assert len(ablation.merge_results(path, [again])) == 3


def test_detector_scores_are_by_pass_and_the_calibration_is_kept(face_ckpt, ibug_root, tmp_path):
    path = tmp_path / "run.pt"
    path.write_bytes(face_ckpt.read_bytes())
    faces = load_dlib_xml(ibug_root / "labels_ibug_300W_test.xml")[:2]
    calibrations = {"haar": detect.Calibration(0.01, 0.05, 0.9)}
    by_passes = ablation.detector_nme_by_passes(path, faces, calibrations)
    assert sorted(by_passes) == [1, 2, 3, 4] and all(v > 0 for v in by_passes.values())
    assert checkpoint.load_checkpoint(path)["calibration"] == {"haar": calibrations["haar"].__dict__}


def test_a_bad_variant_is_one_line_and_exit_status_2(capsys):
    assert ablation.main(["--variant", "depth=3"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert ablation.main(["--no-base"]) == 2  # nothing left to run
    assert "--no-base needs at least one --variant" in capsys.readouterr().err


def test_the_table_names_each_run_by_what_it_changes(tmp_path, capsys):
    path = tmp_path / "ablation.json"
    entry = {"settings": ablation.BASE, "crops": 12000, "input": 112, "seed": 0, "minutes": 8.0}
    timed = {
        "cpu_ms_per_face": {"float32, one pass": 20.0, "float32, flip": 28.0},
        "val_nme_percent_detector_by_passes": {"1": 5.2, "2": 4.9},
    }
    ablation.merge_results(
        path,
        [
            {**entry, "val_nme_percent": 4.4, **timed},
            {**entry, "settings": {**ablation.BASE, "sigma": 0.5}, "val_nme_percent": 4.1},
        ],
    )
    assert ablation.main(["--table", "--out", str(path)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows[0].startswith("| sigma=0.5 | 112 | 12,000 | 0 | 87 | 4.100 | nan | nan |")
    assert rows[1].startswith("| base | 112 | 12,000 | 0 | 87 | 4.400 |")
    assert rows[1].endswith("| 4.900 | 8.0 | 20.0 |")  # the detector's best number of passes
    assert ablation.main(["--table", "--out", str(tmp_path / "none.json")]) == 2
    resnet = tmp_path / "resnet18.json"  # a regression has no decoders: no column for them
    ablation.merge_results(
        resnet, [{**entry, "settings": ablation.RESNET18, "val_nme_percent": 5.2, **timed}]
    )
    assert ablation.main(["--table", "--model", "resnet18", "--out", str(resnet)]) == 0
    header, rule, row = capsys.readouterr().out.splitlines()
    assert "soft-argmax" not in header and header.count("|") == rule.count("|") == row.count("|") == 10
    assert row == "| resnet18: base | 112 | 12,000 | 0 | 87 | 5.200 | 4.900 | 8.0 | 20.0 |"
