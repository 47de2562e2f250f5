"""Equal-length training runs of Part 4's heatmap model (or Part 3's ResNet18) that differ in a
setting or two, scored on the 300-W validation faces: how a setting is chosen before it goes
into a full run.

    python -m helpers.ablation --crops 12000 --input 112 --variant sigma=0.75 --variant stride=2,sigma=2
    python -m helpers.ablation --variant context=0.15,sigma=0.5   # a tighter crop: more pixels per face
    python -m helpers.ablation --model resnet18 --crops 47640 --variant lr=0.004   # 30 epochs of Part 3's

Each run trains the pretrained EfficientNet-Lite heatmap model (:data:`BASE`, changed by one
``--variant``; the first run is :data:`BASE` itself, unless ``--no-base`` says the variants'
reference is one of them) on the same number of augmented
crops of the 300-W training faces (:func:`helpers.datasets.equal_budget`) with the same
schedule; ``--model resnet18`` trains notebook 03's from-scratch regression instead
(:data:`RESNET18`), and ``--model lite_regression`` the same regression on an ImageNet-pretrained
EfficientNet-Lite (:data:`LITE_REGRESSION`), for as many whole epochs as come nearest to
``--crops``, since their moving average of the weights is counted in epochs.  Each run prints
its validation NME (one pass, no offset or flip; a heatmap model's with argmax and refinement,
and with each decoder of :data:`SCORED_DECODERS` on the side), its minutes of training and its time
per face (``--detector``: also its NME from the face detector's boxes, where a tighter crop
may lose what it gains with the labelled ones).  ``--seeds 0 1`` repeats every run with
other seeds, which shows how far two runs of the same settings differ: a gap smaller than
that says nothing.  Runs are checkpoints like any other (``checkpoints/ablation_*.pt``), so
a repeated command only scores and times them; the results are merged into ``--out`` (a JSON
list, one entry per run), so they come from this code, not from a hand-copied table.  Time a
run with nothing else busy on the machine.  The test faces play no part.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from . import (
    checkpoint,
    config,
    datasets,
    detect,
    download,
    evaluate,
    faces,
    images,
    inference,
    models,
    train,
)
from .landmarker import Landmarker

# notebook 04's model, training and crop settings; a variant overrides some of them
BASE = {
    "variant": 0,
    "stride": 4,
    "width": 64,
    "sigma": 1.0,
    "pretrained": True,
    "lr": 2e-3,
    "batch": 32,
    "context": faces.DEFAULT_CONTEXT,
    "point_weight": 0.0,
    "model": "efficientnet_lite",
}
# notebook 03's course ResNet18 (gray input, 136 outputs, from scratch) and its training
RESNET18 = {
    "model": "resnet18",
    "lr": 2e-3,
    "batch": 32,
    "loss": "wing",
    "ema": 5.0,  # TrainConfig.ema_epochs
    "context": 0.25,
}
# the same regression and training on an ImageNet-pretrained EfficientNet-Lite: whether
# pretraining pays in Part 3 too (recorded with the ResNet18's runs, which it compares with)
LITE_REGRESSION = {**RESNET18, "model": "lite_regression", "variant": 0, "pretrained": True}
BASES = {base["model"]: base for base in (BASE, RESNET18, LITE_REGRESSION)}
OUT = {  # in report/
    "efficientnet_lite": "heatmap_ablation.json",
    "resnet18": "resnet18_ablation.json",
    "lite_regression": "resnet18_ablation.json",
}
MODEL_KEYS = ("variant", "stride", "width", "pretrained")
# settings added after runs were recorded: at their BASE value they stay out of a run's name,
# so the checkpoints of the runs made before them are still found
ADDED_LATER = ("context", "point_weight", "model")
SCORED_DECODERS = ("argmax", "local_soft_argmax", "soft_argmax")  # each run is scored with each
# the validation faces of the runs recorded before the split held out LFPW photos too (a run's
# record names its validation set by size; landmarks68.photo_of explains the change): 87 Helen
# faces, where the split now holds out 164 of both sources
VAL_FACES_BEFORE_LFPW = 87


def val_faces(entry: dict) -> int:
    """The number of validation faces a recorded run was scored on."""
    return entry.get("val_faces", VAL_FACES_BEFORE_LFPW)


def parse_variant(text: str, base: dict = BASE) -> dict:
    """``"sigma=0.75,stride=2"`` -> ``{"sigma": 0.75, "stride": 2}``, typed as ``base`` is."""
    out = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in base or key == "model":
            known = ", ".join(k for k in base if k != "model")
            raise ValueError(f"bad variant {item!r}: use KEY=VALUE with KEY one of {known}")
        kind = type(base[key])
        try:
            out[key] = value.strip().lower() in ("1", "true", "yes") if kind is bool else kind(value)
        except ValueError:
            raise ValueError(f"bad variant {item!r}: {key} takes {kind.__name__} values") from None
    return out


def base_of(settings: dict) -> dict:
    """The base settings of ``settings``' model (a run recorded before ``model`` existed is
    Part 4's)."""
    return BASES[settings.get("model", BASE["model"])]


def describe(settings: dict) -> str:
    """What ``settings`` change in their model's base, as ``"sigma=0.5, stride=2"`` (or
    ``"base"``); Part 3's runs start with their model's name (``resnet18: base``)."""
    base = base_of(settings)
    changed = ", ".join(f"{k}={v}" for k, v in settings.items() if base.get(k) != v) or "base"
    return changed if base is BASE else f"{base['model']}: {changed}"


def model_spec(settings: dict) -> dict:
    if base_of(settings) is RESNET18:
        return {"kind": "resnet18", "n_points": 68, "pretrained": False}  # notebook 03's spec
    if base_of(settings) is LITE_REGRESSION:
        return {
            "kind": "regression_efficientnet_lite",
            "n_points": 68,
            "variant": settings["variant"],
            "pretrained": settings["pretrained"],
        }
    return {
        "kind": "heatmap_efficientnet_lite",
        "n_points": 68,
        "decode": "argmax",
        "logits": True,
        **{k: settings[k] for k in MODEL_KEYS},
    }


def run_name(settings: dict, n_crops: int, input_size: int, seed: int) -> str:
    """A checkpoint name that changes with everything that shapes the run."""
    named = {k: v for k, v in settings.items() if not (k in ADDED_LATER and v == BASE[k])}
    key = json.dumps([named, n_crops, input_size, seed], sort_keys=True)
    return f"ablation_{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def detector_nme_by_passes(
    path: Path, records, calibrations: dict[str, detect.Calibration]
) -> dict[int, float]:
    """Validation NME (%) from the face detector's boxes, by number of passes, as notebook 04
    chooses them (:func:`helpers.evaluate.choose_passes`): a setting that only pays with the
    labelled boxes (a tighter crop cuts off more of a badly boxed face) shows here."""
    checkpoint.update(path, calibration={name: cal.__dict__ for name, cal in calibrations.items()})
    _, by_passes = evaluate.choose_passes(records, Landmarker(path))
    return {n: round(v, 3) for n, v in by_passes.items()}


def equal_length_run(
    settings: dict,
    data: faces.IbugData,
    n_crops: int,
    seed: int = 0,
    device=None,
    calibrations: dict[str, detect.Calibration] | None = None,
) -> dict:
    """One run of ``n_crops`` training crops with ``settings`` (:data:`BASE` and its overrides):
    its validation NME (%) with argmax and with each of :data:`SCORED_DECODERS`, minutes of
    training and milliseconds per face on 2 CPU threads
    (:func:`helpers.evaluate.cpu_ms_by_setting`, over the validation faces; a finer map or a
    larger encoder must still fit the time budget); with detector ``calibrations``, also its
    NME from the detector's boxes (:func:`detector_nme_by_passes`)."""
    input_size = data.preprocess["input_size"]
    if data.preprocess["context"] != settings["context"]:
        raise ValueError(
            f"the crops have context {data.preprocess['context']}, the run asks for {settings['context']}"
        )
    shared = {
        "lr": settings["lr"],
        "batch_size": settings["batch"],
        "bf16": config.bf16_is_fast(device or config.device()),
        "seed": seed,
    }
    heatmaps = base_of(settings) is BASE
    if heatmaps:
        loss = {
            "loss": "heatmap_gaussian_ce",
            "sigma": settings["sigma"],
            "point_weight": settings["point_weight"],
        }
        cfg = train.TrainConfig(epochs=1, **loss, **shared)
        train_ds = datasets.equal_budget(data.tune, n_crops, seed)
    else:  # whole epochs, as notebook 03 trains: its moving average spans a number of them
        epochs = max(1, round(n_crops / len(data.tune)))
        cfg = train.TrainConfig(epochs=epochs, loss=settings["loss"], ema_epochs=settings["ema"], **shared)
        train_ds = data.tune
    name = run_name(settings, n_crops, input_size, seed)
    model, history = train.fit(
        model_spec(settings),
        train_ds,
        data.val,
        name,
        cfg,
        device=device,
        progress=False,
        extra={"preprocess": data.preprocess},
    )
    by_decoder = {
        method: round(inference.nme_percent(models.WithDecoder(model, method), data.val), 3)
        for method in (SCORED_DECODERS if heatmaps else ())
    }
    path = train.checkpoint_path(name)
    timings = evaluate.cpu_ms_by_setting(path, data.val.records)
    result = {
        "val_faces": len(data.val),
        "val_nme_percent": by_decoder["argmax"]
        if heatmaps
        else round(inference.nme_percent(model, data.val), 3),
        **({"val_nme_percent_by_decoder": by_decoder} if heatmaps else {"epochs": epochs}),
        "minutes": round(history.seconds / 60, 2),
        "cpu_ms_per_face": {f"{d}, {w}": round(v, 2) for (d, w), v in timings.items()},
    }
    if calibrations is not None:
        result["val_nme_percent_detector_by_passes"] = detector_nme_by_passes(
            path, data.val.records, calibrations
        )
    return result


def recorded(path: Path) -> list[dict]:
    """The runs recorded in ``path`` (none if it does not exist)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else []


def scored_on(
    entries: list[dict], models: tuple[str, ...], input_size: int, n_val_faces: int, seed: int = 0
) -> list[dict]:
    """The runs of ``models`` in crops of ``input_size`` that were scored on ``n_val_faces``
    validation faces: those whose figures compare with a notebook's on the same split.  Of one
    ``seed``, so that each setting and length appears once (other seeds measure the spread)."""
    return [
        e
        for e in entries
        if base_of(e["settings"])["model"] in models
        and e["input"] == input_size
        and val_faces(e) == n_val_faces
        and e["seed"] == seed
    ]


# Part 3's runs at their base settings, as a notebook's table names them: (encoder, ImageNet weights)
REGRESSION_RUNS = {
    ("ResNet18", False): RESNET18,
    ("EfficientNet-Lite0", True): LITE_REGRESSION,
    ("EfficientNet-Lite0", False): {**LITE_REGRESSION, "pretrained": False},
}


def regression_runs(entries: list[dict], input_size: int, n_val_faces: int, seed: int = 0) -> dict:
    """Part 3's recorded runs of :data:`REGRESSION_RUNS` that compare with a notebook's (see
    :func:`scored_on`), keyed ``(encoder, ImageNet weights, epochs)``: each one's validation
    NME, minutes of training and ms per face (ONNX Runtime, one pass)."""
    runs = {}
    for e in scored_on(entries, ("resnet18", "lite_regression"), input_size, n_val_faces, seed):
        for (encoder, pretrained), settings in REGRESSION_RUNS.items():
            if e["settings"] == settings:
                runs[(encoder, pretrained, e["epochs"])] = {
                    "val NME %": e["val_nme_percent"],
                    "minutes": e["minutes"],
                    "ms per face": e["cpu_ms_per_face"].get("onnxruntime, one pass", float("nan")),
                }
    return runs


def lengths(runs: dict, model: tuple[str, bool]) -> list[int]:
    """The numbers of epochs, shortest first, at which ``model`` (an ``(encoder, ImageNet
    weights)`` pair) has a run in ``runs`` (keyed as :func:`regression_runs` keys them)."""
    return sorted(n for *m, n in runs if tuple(m) == tuple(model))


def longest_shared_length(runs: dict, models) -> int | None:
    """The most epochs at which every one of ``models`` (``(encoder, ImageNet weights)`` pairs)
    has a run in ``runs`` (keyed as :func:`regression_runs` keys them); ``None`` if none."""
    return max((n for *_, n in runs if all((*m, n) in runs for m in models)), default=None)


def merge_results(path: Path, entries: list[dict]) -> list[dict]:
    """``entries`` merged into the JSON list at ``path``: an entry of the same settings, crops,
    input size, seed and validation set replaces the old one's figures, and keeps those it did
    not measure (a rerun without ``--detector`` keeps the detector's figures).  A run scored on
    another validation set is another entry: its figures do not compare with the old ones."""
    path = Path(path)
    old = recorded(path)

    def run(e):  # a setting added later, at its base value, is the run recorded before it
        settings = {**{k: BASE[k] for k in ADDED_LATER}, **e["settings"]}
        return json.dumps(
            [settings, *(e[k] for k in ("crops", "input", "seed")), val_faces(e)], sort_keys=True
        )

    by_run = {run(e): e for e in old}
    for e in entries:
        by_run[run(e)] = {**by_run.get(run(e), {}), **e}
    merged = list(by_run.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return merged


def best_detector_nme(entry: dict) -> float:
    """A run's validation NME (%) from the detector's boxes at its best number of passes (NaN
    where it was not scored with ``--detector``)."""
    return min(entry.get("val_nme_percent_detector_by_passes", {}).values(), default=float("nan"))


def table(entries: list[dict]) -> str:
    """The runs as a Markdown table, each named by what it changes in its model's base and
    grouped by validation set; the local soft-argmax column only where there are heatmap runs
    (a regression has no decoder)."""
    heatmaps = any(base_of(e["settings"]) is BASE for e in entries)
    nme, local_column = ("val NME % (argmax)", " local soft-argmax |") if heatmaps else ("val NME %", "")
    lines = [
        f"| run | input px | crops | seed | val faces | {nme} |{local_column} detector | minutes "
        "| ms per face |",
        "|---|---|---|---|---|---|" + "---|" * heatmaps + "---|---|---|",
    ]
    order = lambda e: (val_faces(e), e["input"], e["crops"], e["val_nme_percent"], e["seed"])
    for e in sorted(entries, key=order):
        ms = e.get("cpu_ms_per_face", {})
        one = next((v for k, v in ms.items() if k.endswith("one pass")), float("nan"))
        local = e.get("val_nme_percent_by_decoder", {}).get("local_soft_argmax", float("nan"))
        lines.append(
            f"| {describe(e['settings'])} | {e['input']} | {e['crops']:,} | {e['seed']} | {val_faces(e)} | "
            f"{e['val_nme_percent']:.3f} |" + f" {local:.3f} |" * heatmaps + f" {best_detector_nme(e):.3f} | "
            f"{e['minutes']:.1f} | {one:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.ablation", description=__doc__.split("\n\n")[0].replace("\n", " ")
    )
    parser.add_argument("--variant", action="append", default=[], help="KEY=VALUE[,KEY=VALUE] over the base")
    parser.add_argument(
        "--model",
        choices=list(BASES),
        default=BASE["model"],
        help="Part 4's heatmap model, Part 3's ResNet18, or Part 3's regression on a pretrained "
        "EfficientNet-Lite",
    )
    parser.add_argument("--crops", type=int, default=12000, help="training crops per run")
    parser.add_argument("--input", type=int, default=112, help="crop side in pixels")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--out",
        type=Path,
        help="default: report/heatmap_ablation.json, or resnet18_ablation.json for Part 3's models",
    )
    parser.add_argument(
        "--detector", action="store_true", help="also score each run from the face detector's boxes"
    )
    parser.add_argument("--table", action="store_true", help="print the runs in --out as a table; train none")
    parser.add_argument(
        "--no-base", action="store_true", help="run the variants alone (their reference is one of them)"
    )
    args = parser.parse_args(argv)
    args.out = args.out or config.REPORT_DIR / OUT[args.model]
    if args.table:
        if not args.out.exists():
            print(f"error: {args.out}: no runs recorded yet", file=sys.stderr)
            return 2
        print(table(json.loads(args.out.read_text())))
        return 0
    try:
        base_run = [] if args.no_base else [{}]
        variants = base_run + [parse_variant(v, BASES[args.model]) for v in args.variant]
        if not variants:
            raise ValueError("--no-base needs at least one --variant")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ibug, yt = download.fetch("ibug"), download.fetch("youtube_faces")
    crops_by_context = {}  # the face crops of each context a run asks for, made once
    calibrations = None
    entries = []
    for seed in args.seeds:
        for overrides in variants:
            settings = {**BASES[args.model], **overrides}
            context = settings["context"]
            if context not in crops_by_context:
                crops_by_context[context] = faces.ibug_data(
                    ibug, yt, args.input, context, faces.FACE_AUGMENT, 0.1, 0
                )
            data = crops_by_context[context]
            if args.detector and calibrations is None:  # as notebook 04: on 300 training faces
                calibrations, _ = detect.calibrate_stages(
                    detect.FaceDetector(), data.tune.records[:300], images.load_image
                )
            result = equal_length_run(settings, data, args.crops, seed, calibrations=calibrations)
            ms = result["cpu_ms_per_face"]
            decoders = result.get("val_nme_percent_by_decoder", {})
            print(
                f"{describe(settings):<28} seed {seed}: {result['val_nme_percent']:.3f} % "
                + (f"({', '.join(f'{d} {v:.3f}' for d, v in decoders.items())}) " if decoders else "")
                + f"({result['minutes']:.1f} min; ms per face: "
                + ", ".join(f"{k} {v:.1f}" for k, v in ms.items())
                + ")"
                + (f"; detector: {best_detector_nme(result):.3f} %" if calibrations is not None else "")
            )
            entries.append(
                {"settings": settings, "crops": args.crops, "input": args.input, "seed": seed, **result}
            )
    if not config.smoke():
        merge_results(args.out, entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
