"""The checkpoint file: what a trained model's ``.pt`` holds, and the only code that reads or writes one.

A checkpoint is a ``dict`` written by :func:`save` and read by :func:`load_checkpoint`.  It holds tensors
and plain Python values only (``str``, numbers, ``bool``, ``None``, lists, tuples, dicts),
so :func:`load_checkpoint` can use ``torch.load(weights_only=True)``: opening a checkpoint never runs
code, whoever made the file.  Its keys:

``format``
    :data:`FORMAT`, the version of this layout.
``spec``
    ``{"kind": ..., **kwargs}``: how :func:`helpers.models.build` rebuilds the model.
``state_dict``
    the weights.
``train_config``, ``history``, ``init_from``, ``backbone_origin``, ``training_faces``, ``augment``
    how :func:`helpers.train.fit` trained it, from which runs it started, and on which faces
    (:func:`helpers.datasets.fingerprint`) with which augmentation.
``preprocess``
    ``{"input_size", "context"}``: the face crop a 68-point face model expects.
``inference``
    test-time settings chosen on validation: ``flip``, the per-point offset of each way to
    run (``offset`` for one pass, ``flip_offset`` for flip averaging, :func:`offset_for`),
    and, for heatmaps, ``decode`` and ``beta`` (see :func:`helpers.inference.choose_settings`),
    and ``precision``: ``"int8"`` where the network runs its ``int8_graph`` by default.
``int8_graph``
    the model as deployed (its decoder chosen), exported to ONNX with most of its layers
    quantized to int8 (:func:`helpers.cpu_runtime.quantize`): ``{"graph": uint8 tensor of its bytes,
    "decode", "beta"}``, the decoder it holds (:func:`int8_graph`).  Calibrated on training
    crops once, so kept rather than remade.  ONNX Runtime parses it as data; a graph holds
    operators of the standard set, never code.
``calibration``
    how each face-detector stage's boxes become the model's boxes: ``{stage: {"dx", "dy",
    "scale"}}`` (:class:`helpers.detect.Calibration`, :data:`helpers.detect.STAGES`).  A file
    from before the HOG detector holds one ``{"dx", "dy", "scale"}``, the Haar cascades'
    (:func:`detector_calibrations` reads both).
``resume``
    only in an unfinished run's :func:`resume_path` file: the optimizer, schedule, best
    weights so far, history and random streams that :func:`helpers.train.fit` continues from.

No value is an absolute path: a checkpoint names another (a backbone, a fine-tuning
source) by its file name, looked up in the folder of trained runs, so a checkout can be
moved or copied without retraining.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import torch
from torch import nn

from . import config

FORMAT = 2
FACE_POINTS = 68  # the 300-W markup every face tool (Landmarker, evaluate, predict) works in


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint for the job; the message names the file and why."""


def checkpoint_path(name: str) -> Path:
    """Where :func:`helpers.train.fit` keeps run ``name``; smoke runs get their own folder so a
    CI-style run never overwrites a fully trained model."""
    return runs_dir() / f"{name}.pt"


def resume_path(name: str) -> Path:
    """Where an unfinished run ``name`` keeps its training state between epochs: a checkpoint
    with a ``resume`` key, removed once the run is done (see :func:`helpers.train.fit`)."""
    return runs_dir() / f"{name}.resume.pt"


def runs_dir() -> Path:
    return config.CHECKPOINT_DIR / ("smoke" if config.smoke() else "")


def resolve(reference: str | Path) -> Path:
    """The file a checkpoint reference names: a bare file name is a run in :func:`runs_dir`;
    a path (as a user may pass to a model spec) is taken as it is."""
    ref = Path(reference)
    return ref if len(ref.parts) > 1 or ref.is_absolute() else runs_dir() / ref


def _plain(value, where: str):
    """``value`` with NumPy numbers and arrays turned into Python ones; anything that
    ``torch.load(weights_only=True)`` could not read back is refused here, at save time."""
    if isinstance(value, (np.generic, np.ndarray)):  # first: np.float64 is also a float
        return value.tolist()
    if isinstance(value, torch.Tensor) or value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        if PurePosixPath(value).is_absolute() or PureWindowsPath(value).drive:
            raise ValueError(f"checkpoint value {where} is an absolute path ({value}): store a file name")
        return value
    if isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
        return value  # a state_dict, kept as it is (with its version metadata)
    if isinstance(value, dict):
        return type(value)((k, _plain(v, f"{where}.{k}")) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise TypeError(f"checkpoint value {where} is a {type(value).__name__}; store plain values")


def save(path: str | Path, contents: dict) -> Path:
    """Write a checkpoint atomically (a half-written file never replaces a good one)."""
    path = Path(path)
    if "spec" not in contents or "state_dict" not in contents:
        raise ValueError("a checkpoint needs at least a model spec and its state_dict")
    plain = {"format": FORMAT, **_plain({k: v for k, v in contents.items() if k != "format"}, "checkpoint")}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(plain, partial)
    os.replace(partial, path)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's dict, loaded on the CPU with ``weights_only=True``, or a one-line
    :class:`CheckpointError` that names the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint (train it with the notebook that names it)")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: holds Python objects other than weights and plain values; refused, "
            "since loading it could run code (not a facial-keypoints checkpoint)"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, AttributeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint, truncated or not written by torch.save ({reason})"
        ) from None
    spec = ckpt.get("spec") if isinstance(ckpt, dict) else None
    if not isinstance(spec, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(
            f"{path}: a PyTorch file, but not a facial-keypoints checkpoint (no model spec and weights)"
        )
    from .models import MODELS

    if spec.get("kind") not in MODELS:
        raise CheckpointError(f"{path}: unknown model kind {spec.get('kind')!r}; known: {', '.join(MODELS)}")
    return ckpt


MERGED_FIELDS = ("inference",)


def update(path: str | Path, **fields) -> dict:
    """Store ``fields`` in an existing checkpoint.  ``inference`` is merged key by key, so
    settings chosen at different times accumulate; any other field is replaced whole (a
    calibration is fitted all at once, and one left from an older layout must not mix in)."""
    ckpt = load_checkpoint(path)
    for key, value in fields.items():
        ckpt[key] = (
            {**ckpt.get(key, {}), **value}
            if key in MERGED_FIELDS and isinstance(value, dict) and isinstance(ckpt.get(key), dict)
            else value
        )
    save(path, ckpt)
    return ckpt


def build_model(ckpt: dict, path: str | Path = "checkpoint", device=None, **spec_changes) -> nn.Module:
    """The checkpoint's model with its weights, in eval mode.  ``spec_changes`` override
    settings that do not change the weights (a heatmap model's ``decode`` and ``beta``)."""
    from .models import build

    try:  # a spec edited by hand, or from a newer version, names settings this code cannot build
        model = build({**ckpt["spec"], **spec_changes}, for_loading=True)
    except (TypeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: its model spec cannot be built here ({first})") from None
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: its weights do not fit its own model spec ({first})") from None
    return model.to(device or config.device()).eval()


def build_deployed(ckpt: dict, path: str | Path = "checkpoint", device=None) -> nn.Module:
    """The checkpoint's model read the way its ``inference`` settings say: a heatmap model with
    the decoder (and β) chosen on validation after training, which its spec, stored before
    that choice, does not name."""
    settings = ckpt.get("inference") or {}
    return build_model(ckpt, path, device, **{k: settings[k] for k in ("decode", "beta") if k in settings})


def load_model(path: str | Path, device=None) -> tuple[nn.Module, dict]:
    """A model rebuilt from a checkpoint file, in eval mode, and the checkpoint's dict."""
    ckpt = load_checkpoint(path)
    return build_model(ckpt, path, device), ckpt


def n_points(ckpt: dict) -> int:
    """How many keypoints the model predicts."""
    import inspect

    from .models import MODELS

    spec = ckpt["spec"]
    if "n_points" in spec:
        return int(spec["n_points"])
    default = inspect.signature(MODELS[spec["kind"]]).parameters["n_points"].default
    if not isinstance(default, int):
        raise CheckpointError(f"a {spec['kind']} checkpoint without n_points in its spec")
    return default


def describe(ckpt: dict) -> str:
    """What a checkpoint is, in words: ``a 1-point soft_argmax model``."""
    return f"a {n_points(ckpt)}-point {ckpt['spec']['kind']} model"


def require_face_model(ckpt: dict, path: str | Path) -> dict:
    """The face-crop settings of a 68-point face model, or a :class:`CheckpointError` that says
    what the checkpoint is instead (an IMM nose-tip or 58-point model, say)."""
    what = describe(ckpt)
    if n_points(ckpt) != FACE_POINTS:
        raise CheckpointError(
            f"{path}: {what}; this tool needs a {FACE_POINTS}-point 300-W face model "
            "(Part 3 or 4, e.g. checkpoints/ibug_resnet18.pt)"
        )
    pre = ckpt.get("preprocess") or {}
    size, context = pre.get("input_size"), pre.get("context")
    if not isinstance(size, int) or size <= 0 or not isinstance(context, (int, float)) or context < 0:
        raise CheckpointError(
            f"{path}: {what} without its face-crop settings (preprocess input_size and context); "
            "checkpoints written by notebooks 03 and 04 have them"
        )
    return {"input_size": size, "context": float(context)}


OFFSET_KEYS = ("offset", "flip_offset")


def offset_for(settings: dict, flip: bool):
    """The per-point offset (``K x 2`` unit coordinates, or ``None``) of ``settings`` (an
    ``inference`` dict) for a model run with or without flip averaging.

    Why each way has its own: flip averaging cancels the sideways part of a model's habits,
    so the offset that corrects one pass overcorrects the average of two (notebook 04's model:
    3.31 % on validation with the one-pass offset, 3.19 % with its own).  A file written before
    ``flip_offset`` existed holds one ``offset``, measured for the way its ``flip`` names, and
    it serves both ways, as it did then."""
    return settings.get("flip_offset" if flip and "flip_offset" in settings else "offset")


def inference_settings(ckpt: dict, path: str | Path) -> dict:
    """The checkpoint's test-time settings, checked: an ``offset`` of one ``(x, y)`` per
    point (a wrong shape would broadcast into silently wrong landmarks), a known decoder,
    a whole number of detector passes, a calibration of three numbers."""
    from .heatmaps import DECODERS

    settings = dict(ckpt.get("inference") or {})
    k = n_points(ckpt)
    for key in OFFSET_KEYS:
        if settings.get(key) is not None:
            offset = np.asarray(settings[key], dtype=np.float64)
            if offset.shape != (k, 2) or not np.isfinite(offset).all():
                raise CheckpointError(
                    f"{path}: its inference {key} has shape {offset.shape}, not {k} finite (x, y) pairs"
                )
    passes = settings.get("passes")
    if passes is not None and (not isinstance(passes, int) or isinstance(passes, bool) or passes < 1):
        raise CheckpointError(f"{path}: its detector passes must be a whole number from 1, not {passes!r}")
    if "decode" in settings and settings["decode"] not in DECODERS:
        raise CheckpointError(f"{path}: unknown decoder {settings['decode']!r}; known: {', '.join(DECODERS)}")
    if settings.get("precision", "float32") not in ("float32", "int8"):
        raise CheckpointError(
            f"{path}: its inference precision must be float32 or int8, not {settings['precision']!r}"
        )
    detector_calibrations(ckpt, path)
    return settings


def _decoder(ckpt: dict) -> dict:
    """The decoder a checkpoint's model is read with (``None`` for a model without one)."""
    settings = ckpt.get("inference") or {}
    return {k: settings.get(k, ckpt["spec"].get(k)) for k in ("decode", "beta")}


def store_int8_graph(path: str | Path, graph: bytes) -> dict:
    """Keep ``graph`` (:func:`helpers.cpu_runtime.quantize` of the model as deployed now) in
    the checkpoint at ``path``, with the decoder it holds."""
    tensor = torch.frombuffer(bytearray(graph), dtype=torch.uint8).clone()
    return update(path, int8_graph={"graph": tensor, **_decoder(load_checkpoint(path))})


def has_int8_graph(ckpt: dict) -> bool:
    """Whether the checkpoint keeps an int8 graph (:func:`int8_graph` checks it when read)."""
    return isinstance(ckpt.get("int8_graph"), dict)


def int8_graph(ckpt: dict, path: str | Path = "checkpoint") -> bytes:
    """The checkpoint's int8 graph, or a :class:`CheckpointError` naming the file if it has
    none, or if its decoder is not the one the checkpoint now names (a graph holds its decoder,
    so one made before another was chosen would silently read the maps the old way)."""
    stored = ckpt.get("int8_graph")
    graph = stored.get("graph") if isinstance(stored, dict) else None
    if not isinstance(graph, torch.Tensor) or graph.dtype != torch.uint8 or graph.dim() != 1:
        raise CheckpointError(
            f"{path}: has no int8 graph (notebook 04 quantizes its heatmap model after training); "
            "use precision 'float32'"
        )
    made_with, now = {k: stored.get(k) for k in ("decode", "beta")}, _decoder(ckpt)
    if made_with != now:
        raise CheckpointError(
            f"{path}: its int8 graph holds decoder {made_with}, but the checkpoint now names {now}; "
            "quantize it again (train.record_int8) or use precision 'float32'"
        )
    return graph.numpy().tobytes()


def _is_calibration(cal) -> bool:
    return (
        isinstance(cal, dict)
        and set(cal) == {"dx", "dy", "scale"}
        and all(isinstance(v, (int, float)) and np.isfinite(v) for v in cal.values())
        and cal["scale"] > 0
    )


def detector_calibrations(ckpt: dict, path: str | Path) -> dict[str, dict]:
    """The checkpoint's detector calibrations by stage name, checked (empty if it has none).
    A file from before the HOG detector holds the Haar cascades' alone."""
    from .detect import STAGES

    cal = ckpt.get("calibration")
    if cal is None:
        return {}
    if isinstance(cal, dict) and set(cal) == {"dx", "dy", "scale"}:
        cal = {"haar": cal}
    if not isinstance(cal, dict) or not all(name in STAGES and _is_calibration(c) for name, c in cal.items()):
        raise CheckpointError(
            f"{path}: its detector calibration is not, for each of {', '.join(STAGES)}, "
            "three finite numbers dx, dy, scale > 0"
        )
    return dict(cal)


def origin(path: str | Path, ckpt: dict | None = None) -> dict:
    """Which run a model started from (a fine-tuning source, or a backbone): its file name
    and when it was trained, so that retraining that run retrains what started from it."""
    ckpt = load_checkpoint(path) if ckpt is None else ckpt
    # a checkpoint not written by fit (a backbone from elsewhere) is known by its name alone
    return {
        "checkpoint": Path(path).name,
        "train_config": ckpt.get("train_config"),
        "seconds": (ckpt.get("history") or {}).get("seconds"),
    }
