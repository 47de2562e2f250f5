"""One way to get 68 landmarks from a photo: build a :class:`Landmarker` once, call it.

    lm = Landmarker("checkpoints/ibug_resnet18.pt")
    for box, points in lm(image):            # the detector finds the faces
        ...
    points = lm.from_boxes(gray, [box])      # or give the boxes yourself

The notebooks, ``helpers.evaluate``, ``helpers.predict`` and the tests all go through it.
The checkpoint says how its model wants faces cropped (``preprocess``: input size and
context), when fitted, how to turn each face-detector stage's boxes into that crop
(``calibration``, :mod:`helpers.detect`), and
whether test-time flip averaging is worth its cost for this model, how many passes a detected
face gets and, for a heatmap model, which decoder reads its maps best (``inference``, chosen
on validation data), and the mean offset per point between the model and the 300-W labels,
measured on the training faces for each way to run, one pass or flip averaging
(:func:`helpers.checkpoint.offset_for`, :func:`helpers.inference.mean_residual`).

Detector boxes are only a first guess of the landmark box the model was trained on, so a
detected face is predicted more than once: each pass after the first in the box of the last
prediction's landmarks, the training convention exactly (two passes unless the checkpoint
records another number, see :func:`helpers.evaluate.choose_passes`).
"""

from __future__ import annotations

import numpy as np
import torch

from . import config, geometry
from .checkpoint import (
    build_deployed,
    detector_calibrations,
    inference_settings,
    int8_graph,
    load_checkpoint,
    offset_for,
    require_face_model,
)
from .cpu_runtime import PRECISIONS, RUNTIMES, OnnxModel, resolve
from .detect import STAGES, Calibration, FaceDetector, checked_stages
from .faces import crop_matrix
from .images import centre, to_gray, to_unit_float
from .inference import predict_batch
from .landmarks68 import FLIP_PERMUTATION, box_of
from .models import fix_same_padding, fuse_batchnorm

DEFAULT_PASSES = 2  # passes per detected face where the checkpoint records no choice


def add_cli_options(parser) -> None:
    """The options the command-line tools share for building a :class:`Landmarker`."""
    import argparse

    parser.add_argument("--device", help="cpu or cuda (default: CUDA if available)")
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="test-time flip averaging (default: what the checkpoint records)",
    )
    parser.add_argument(
        "--passes",
        type=int,
        help="passes per detected face, each re-cropped by the last landmarks (default: the checkpoint's)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: the checkpoint's choice (int8 where it chose it), in ONNX Runtime float32 "
        "otherwise; with --runtime torch, bfloat16 on CPUs with AVX512-BF16, else float32",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="what runs the network; auto: ONNX Runtime on a CPU where it is installed, else PyTorch",
    )
    parser.add_argument(
        "--detector-stages",
        type=lambda text: tuple(text.split(",")),
        default=STAGES,
        help=f"face detectors to try in turn (default: {','.join(STAGES)}; 'haar' needs no dlib)",
    )


def _checked_passes(passes: int) -> int:
    if passes < 1:
        raise ValueError(f"passes must be at least 1, got {passes}")
    return passes


def _plausible(box, previous):
    side, before = max(box[2], box[3]), max(previous[2], previous[3])
    return tuple(box) if 0.5 * before <= side <= 2 * before else tuple(previous)


def _checked_boxes(boxes) -> list[tuple[float, float, float, float]]:
    """Boxes as ``(left, top, width, height)`` floats, or a ``ValueError`` naming the bad one."""
    out = []
    for k, box in enumerate(boxes):
        try:
            left, top, w, h = (float(v) for v in box)
        except (TypeError, ValueError):
            raise ValueError(f"box {k}: expected (left, top, width, height), got {box!r}") from None
        if not all(np.isfinite((left, top, w, h))) or w <= 0 or h <= 0:
            raise ValueError(f"box {k}: needs finite values and a positive width and height, got {box!r}")
        out.append((left, top, w, h))
    return out


class Landmarker:
    """``checkpoint``: a 68-point face model's file (anything else is refused with a
    :class:`helpers.checkpoint.CheckpointError` that says what it is).
    ``flip``: test-time flip averaging (``None``: the checkpoint's choice, else off).
    ``passes``: predictions per detected face (``None``: the checkpoint's choice, else two).
    ``offset``: add the checkpoint's per-point offset for the way it runs (one pass or flip
    averaging), if it has one (``False`` to see the raw network).
    ``runtime``: what runs the network: ``"auto"`` is ONNX Runtime on a CPU where it is installed
    (float32; about twice as fast per face as PyTorch, :mod:`helpers.cpu_runtime`), else
    PyTorch; ``"torch"`` or ``"onnxruntime"`` choose.
    ``detector``: what finds faces (``landmark_boxes(gray)``); ``None``: a
    :class:`helpers.detect.FaceDetector` of ``detector_stages`` with the checkpoint's
    calibrations, built on first use (so boxes given by hand need no dlib).
    ``precision``: ``"int8"`` runs the checkpoint's int8 graph in ONNX Runtime (most of its
    layers quantized, :func:`helpers.cpu_runtime.quantize`; a checkpoint without one is refused), and
    ``"auto"`` does so where the checkpoint chose it on validation (``inference`` ``precision``)
    and ONNX Runtime runs the network.  For PyTorch, ``"auto"`` runs the weights in bfloat16 where
    :func:`helpers.config.bf16_is_fast` (about 1.5x faster per face than float32 on this
    project's CPU, a change of 0.01 NME points), else float32; ``"bfloat16"`` implies PyTorch.
    For inference every BatchNorm is folded into its convolution, and TensorFlow-style "same"
    padding is fixed for the crop size (:func:`helpers.models.fix_same_padding`), so
    ``self.model``, the PyTorch model (its decoder, its number of points) whichever runtime
    runs it, takes crops of ``input_size`` only.  ``self.network`` is what runs a batch of
    crops to unit coordinates, and ``self.engine`` names it (:meth:`engine_name`)."""

    def __init__(
        self,
        checkpoint,
        device=None,
        flip: bool | None = None,
        detector=None,
        precision: str = "auto",
        offset: bool = True,
        passes: int | None = None,
        runtime: str = "auto",
        detector_stages: tuple[str, ...] = STAGES,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.device = config.device(device)
        ckpt = load_checkpoint(checkpoint)
        pre = require_face_model(ckpt, checkpoint)
        self.input_size, self.context = pre["input_size"], pre["context"]
        inference = inference_settings(ckpt, checkpoint)
        self.model = build_deployed(ckpt, checkpoint, self.device)
        if precision == "auto" and inference.get("precision") == "int8":
            if resolve(runtime, self.device) == "onnxruntime":
                precision = "int8"
        self.engine = self.engine_name(runtime, precision, self.device)
        onnx = self.engine.startswith("onnxruntime")
        self.runtime = "onnxruntime" if onnx else "torch"
        self.dtype = torch.float32 if onnx else getattr(torch, self.engine)
        if onnx:  # exported as trained: ONNX Runtime folds BatchNorm and picks its layouts itself
            graph = int8_graph(ckpt, checkpoint) if precision == "int8" else None
            self.network = OnnxModel(
                fix_same_padding(self.model, self.input_size), self.input_size, graph=graph
            )
            self._layout = torch.contiguous_format
        else:  # NHWC: oneDNN's fastest layout on CPUs (about 1.3x per face at batch size 1)
            self._layout = torch.channels_last
            network = fix_same_padding(fuse_batchnorm(self.model), self.input_size)
            self.network = network.to(self.dtype).to(memory_format=self._layout)
        self.flip = bool(inference.get("flip", False)) if flip is None else flip
        self.passes = (
            int(inference.get("passes", DEFAULT_PASSES)) if passes is None else _checked_passes(passes)
        )
        stored = offset_for(inference, self.flip) if offset else None
        self.offset = (
            None if stored is None else torch.as_tensor(stored, dtype=torch.float32, device=self.device)
        )
        self.calibrations = {
            name: Calibration(**cal) for name, cal in detector_calibrations(ckpt, checkpoint).items()
        }
        self.detector_stages = checked_stages(detector_stages)
        self._detector = detector
        self.checkpoint = ckpt

    def face_detector(self):
        """What finds faces, built on first use (so boxes given by hand need no dlib)."""
        if self._detector is None:
            self._detector = FaceDetector(self.calibrations, self.detector_stages)
        return self._detector

    @classmethod
    def from_cli_options(cls, args) -> Landmarker:
        """The Landmarker that parsed command-line options ask for: ``args.checkpoint`` and the
        options of :func:`add_cli_options`."""
        return cls(
            args.checkpoint,
            device=args.device,
            flip=args.flip,
            precision=args.precision,
            passes=args.passes,
            runtime=args.runtime,
            detector_stages=args.detector_stages,
        )

    def crops(self, gray: np.ndarray, boxes) -> tuple[torch.Tensor, list[np.ndarray]]:
        gray = to_gray(gray)
        mats = [crop_matrix(b, self.input_size, self.context) for b in boxes]
        size = (self.input_size, self.input_size)
        return centre(to_unit_float(np.stack([geometry.warp(gray, m, size) for m in mats]))), mats

    @torch.inference_mode()
    def from_boxes(self, gray: np.ndarray, boxes) -> np.ndarray:
        """``F x 68 x 2`` landmarks in the photo's pixels for faces in ``boxes`` (left, top, w, h).

        Boxes follow the training convention (the landmarks' bounding box); a box partly or
        wholly outside the photo is fine (the crop repeats the border).  ``gray`` is any image
        :func:`helpers.images.as_uint8` accepts."""
        boxes = _checked_boxes(boxes)
        if len(boxes) == 0:
            return np.zeros((0, self.model.n_points, 2), np.float32)
        batch, mats = self.crops(gray, boxes)
        batch = batch.to(self.device, self.dtype).contiguous(memory_format=self._layout)
        units = (
            predict_batch(self.network, batch, FLIP_PERMUTATION if self.flip else None, self.offset)
            .float()
            .cpu()
            .numpy()
        )
        pixels = geometry.from_unit(units, (self.input_size, self.input_size))
        return np.stack([geometry.apply(geometry.invert(m), p) for m, p in zip(mats, pixels)])

    @staticmethod
    def dtype_name(precision: str = "auto", device="cpu") -> str:
        """``"bfloat16"`` or ``"float32"``: what the weights run in for ``precision`` on
        ``device``, known without loading a model (timing tables key on it)."""
        device = config.device(device)
        auto_bf16 = device.type == "cpu" and config.bf16_is_fast(device)  # GPUs: float32, as before
        return "bfloat16" if precision == "bfloat16" or (precision == "auto" and auto_bf16) else "float32"

    @staticmethod
    def engine_name(runtime: str = "auto", precision: str = "auto", device="cpu") -> str:
        """``"onnxruntime"`` (float32), ``"onnxruntime int8"``, or the PyTorch dtype's name
        (:meth:`dtype_name`): what runs the network for these settings, known without loading a
        model (timing tables key on it).  What ``"auto"`` comes to for a checkpoint that chose
        int8 is known once it is loaded: :attr:`engine`."""
        device = config.device(device)
        if resolve(runtime, device, precision) == "onnxruntime":
            return "onnxruntime int8" if precision == "int8" else "onnxruntime"
        return Landmarker.dtype_name(precision, device)

    def from_detections(self, gray: np.ndarray, boxes, passes: int | None = None) -> np.ndarray:
        """Landmarks for faces in detector boxes (already in the landmark-box convention):
        each pass after the first re-crops the face by the box of the last prediction, unless
        that box is implausible (under half or over twice the size of the one before, as from
        a collapsed prediction), where the face keeps its box.  ``passes``: the checkpoint's
        choice unless given."""
        passes = self.passes if passes is None else _checked_passes(passes)
        points = self.from_boxes(gray, boxes)
        for _ in range(passes - 1):
            boxes = [_plausible(box_of(p), old) for p, old in zip(points, boxes)]
            points = self.from_boxes(gray, boxes)
        return points

    def detect(self, gray: np.ndarray):
        """Face boxes in the landmark-box convention, the detector's best first."""
        return self.face_detector().landmark_boxes(to_gray(gray))

    def __call__(self, image: np.ndarray):
        """``[(box, 68 x 2 points), ...]`` for every face the detector finds in ``image``:
        ``uint8`` grayscale ``(H, W)``, ``(H, W, 1)`` or RGB(A), 16-bit, or float in [0, 1]
        (:func:`helpers.images.as_uint8`); anything else raises a ``TypeError`` or
        ``ValueError`` that says what is expected."""
        gray = to_gray(image)
        boxes = self.detect(gray)
        return list(zip(boxes, self.from_detections(gray, boxes)))
