"""Inference on a CPU through ONNX Runtime: a trained network exported, in memory, to an ONNX
graph and run by ``onnxruntime`` instead of PyTorch.

Why: at batch size 1 on two CPU threads, PyTorch runs notebook 04's EfficientNet-Lite1 heatmap
model in about 14-17 ms (bfloat16, channels-last, BatchNorm folded; float32: about 20), while
ONNX Runtime runs the same model in float32 in about 8-10 ms (a sixth less once its padding is
fixed for the crop size, :func:`helpers.models.fix_same_padding`).  A small batch of a
depthwise-separable network is mostly per-operator overhead and memory traffic, which ONNX
Runtime's fused kernels save; its points equal PyTorch's float32 points to rounding (1e-6 of
the crop), so no accuracy is traded.  The decoder runs inside the graph too: between two
runtimes on two cores, each one's waiting threads slow the other (measured: 12 against 10 ms
per face).  The graph is exported when a :class:`helpers.landmarker.Landmarker` is built (one
to three seconds) and never written to disk: the checkpoint stays the one file a trained model
is kept in.

Most of a heatmap model can run in int8 (:func:`quantize`): the convolutions of its encoder
and decoder, with weights and activations rounded to 8 bits, calibrated on training crops.  On
CPUs with VNNI instructions they run about twice as fast, which buys test-time flip averaging,
two crops, for about the time of one float32 crop.  The head, which writes the maps, and the
decoding stay float32, so the points are read from maps that were never rounded: rounding the
whole graph, decoding included, moved notebook 04's final model by 0.15 NME points on the
validation faces, where the rest alone moves its validation run by 0.04.  The encoder's first
stage (:data:`FLOAT32_MODULES`: stem and first block, at half the crop's resolution, with few
channels) stays float32 too: it is where rounding costs the most and saves the least time.
Rounding it took most of what int8 cost notebook 04's validation run (its validation table
has both); rounded one at a time, no later stage cost a fifth as much as the first.
A quantized graph depends on calibration data, so it is made once, after training, and kept
in the checkpoint (:func:`helpers.checkpoint.int8_graph`).
"""

from __future__ import annotations

import importlib.util
import io
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

RUNTIMES = ("auto", "torch", "onnxruntime")
PRECISIONS = ("auto", "float32", "bfloat16", "int8")
# what quantize() rounds in a heatmap model: not its head, which writes the maps, ...
INT8_MODULES = ("encoder", "lateral", "smooth")
# ... and not its encoder's first stage (stem and first block), named as the exporter names them
FLOAT32_MODULES = ("encoder/conv_stem", "encoder/bn1", "encoder/blocks.0")


def installed() -> bool:
    """Whether ONNX Runtime and the ``onnx`` package the exporter writes with can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def resolve(runtime: str, device: torch.device, precision: str = "auto") -> str:
    """``"torch"`` or ``"onnxruntime"``: what runs the network for ``runtime`` (one of
    :data:`RUNTIMES`) on ``device``.  ``"auto"`` is ONNX Runtime on a CPU where it is installed
    and float32 is acceptable (``precision`` ``"auto"`` or ``"float32"``), else PyTorch: a GPU,
    and bfloat16 weights, are PyTorch's; an ``"int8"`` graph (:func:`quantize`) is ONNX
    Runtime's."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    on_cpu = torch.device(device).type == "cpu"
    if precision == "int8":  # a quantized graph is ONNX Runtime's alone
        if runtime == "torch":
            raise ValueError("int8 runs in ONNX Runtime: use runtime='onnxruntime' or 'auto'")
        runtime = "onnxruntime"
    if runtime == "onnxruntime":
        if not on_cpu:
            raise ValueError(f"runtime 'onnxruntime' runs on the CPU, not on {device}: use runtime='torch'")
        if precision == "bfloat16":
            raise ValueError("ONNX Runtime runs float32 weights: bfloat16 needs runtime='torch'")
        if not installed():
            raise ModuleNotFoundError("runtime 'onnxruntime' needs: pip install onnx onnxruntime")
        return runtime
    if runtime == "auto" and on_cpu and precision != "bfloat16" and installed():
        return "onnxruntime"
    return "torch"


def export(model: nn.Module, size: int) -> bytes:
    """``model`` as an ONNX graph (in memory) for ``B x 1 x size x size`` batches of any ``B``,
    with ``images`` in and ``points`` out: what :class:`OnnxModel` runs."""
    example = torch.zeros(2, 1, size, size)  # 2, not 1: a batch of 1 may be traced as a constant
    graph = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter: deprecated since PyTorch 2.9, kept in the releases
        # this project allows (torch < 2.15, pyproject.toml), and about six times faster than
        # the torch.export-based one (2 s against 12 s for the heatmap model), a delay
        # every Landmarker would otherwise start with.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="The feature will be removed")
        # constants such as a decoder's cell size: right, for a graph of one crop size
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # a fixed padding's reversed amounts (models.fix_same_padding): ONNX Runtime folds them
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(
            model.eval(),
            (example,),
            graph,
            dynamo=False,
            input_names=["images"],
            output_names=["points"],
            dynamic_axes={"images": {0: "batch"}, "points": {0: "batch"}},
        )
    return graph.getvalue()


class _Crops:
    """``onnxruntime.quantization``'s calibration reader: one batch of crops at a time."""

    def __init__(self, crops: torch.Tensor, batch: int = 16):
        self.batches = iter(
            {"images": crops[i : i + batch].float().contiguous().numpy()} for i in range(0, len(crops), batch)
        )

    def get_next(self):
        return next(self.batches, None)


def quantize(
    model: nn.Module, size: int, crops: torch.Tensor, modules=INT8_MODULES, float_modules=FLOAT32_MODULES
) -> bytes:
    """``model``'s graph (:func:`export`) with the operators of its sub-modules ``modules``,
    less those of ``float_modules``, in int8: weights per output channel, activations per
    tensor over the range they take on ``crops`` (``N x 1 x size x size``, training faces:
    calibration must not see test data).  Everything else stays float32.  Sub-modules are named
    by the path the exporter gives their operators, ``/``-separated (``"encoder/blocks.0"``); an
    attribute's name covers a ``ModuleList``'s items.  ONNX Runtime's static quantization (QDQ
    format, min-max calibration) does the work; this only picks the nodes."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as folder:
        plain, prepared, quantized = (Path(folder) / f"{n}.onnx" for n in ("plain", "prepared", "int8"))
        plain.write_bytes(export(model, size))
        quant_pre_process(str(plain), str(prepared))
        names = [node.name for node in onnx.load(str(prepared)).graph.node]
        inside, held = _node_prefixes(modules), _node_prefixes(float_modules)
        keep_float = [n for n in names if not n.startswith(inside) or n.startswith(held)]
        if len(keep_float) == len(names):
            raise ValueError(f"the model has no sub-module named {' or '.join(modules)} to quantize")
        quantize_static(
            str(prepared),
            str(quantized),
            _Crops(crops),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float,
        )
        return quantized.read_bytes()


def _node_prefixes(modules) -> tuple[str, ...]:
    """What the names of the exporter's nodes inside ``modules`` begin with."""
    return tuple(f"/{m}{end}" for m in modules for end in ("/", "."))


class OnnxModel(nn.Module):
    """A keypoint model of :mod:`helpers.models` exported whole to ONNX, decoder included (its
    argmax and look-ups have fixed shapes for one crop size), and run by an ONNX Runtime session
    on ``threads`` CPU threads (``None``: PyTorch's current number, so that
    ``torch.set_num_threads`` governs both runtimes alike).  Called like the model itself: a
    ``B x 1 x size x size`` batch of any ``B`` in, ``B x K x 2`` float32 unit coordinates out,
    on the CPU.  ``graph``: a graph made from ``model`` before (:func:`quantize`) to run
    instead of a fresh export."""

    def __init__(self, model: nn.Module, size: int, threads: int | None = None, graph: bytes | None = None):
        import onnxruntime

        super().__init__()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            graph or export(model, size), options, providers=["CPUExecutionProvider"]
        )
        self.n_points = model.n_points

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch = images.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"images": batch})[0])
