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
"""

from __future__ import annotations

import importlib.util
import io
import warnings

import torch
from torch import nn

RUNTIMES = ("auto", "torch", "onnxruntime")


def installed() -> bool:
    """Whether ONNX Runtime and the ``onnx`` package the exporter writes with can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def resolve(runtime: str, device: torch.device, precision: str = "auto") -> str:
    """``"torch"`` or ``"onnxruntime"``: what runs the network for ``runtime`` (one of
    :data:`RUNTIMES`) on ``device``.  ``"auto"`` is ONNX Runtime on a CPU where it is installed
    and float32 is acceptable (``precision`` ``"auto"`` or ``"float32"``), else PyTorch: a GPU,
    and bfloat16 weights, are PyTorch's."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    on_cpu = torch.device(device).type == "cpu"
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


class OnnxModel(nn.Module):
    """A keypoint model of :mod:`helpers.models` exported whole to ONNX, decoder included (its
    argmax and look-ups have fixed shapes for one crop size), and run by an ONNX Runtime session
    on ``threads`` CPU threads (``None``: PyTorch's current number, so that
    ``torch.set_num_threads`` governs both runtimes alike).  Called like the model itself: a
    ``B x 1 x size x size`` batch of any ``B`` in, ``B x K x 2`` float32 unit coordinates out,
    on the CPU."""

    def __init__(self, model: nn.Module, size: int, threads: int | None = None):
        import onnxruntime

        super().__init__()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            export(model, size), options, providers=["CPUExecutionProvider"]
        )
        self.n_points = model.n_points

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch = images.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"images": batch})[0])
