import numpy as np
import pytest
import torch

from helpers import cpu_runtime, models
from helpers.landmarker import Landmarker
from tests.test_checkpoint import tiny

HEATMAP = {"kind": "heatmap_efficientnet_lite", "variant": 0, "n_points": 68, "logits": True}


def _clear_peaks(model, images) -> torch.Tensor:
    """Which points' maps have one clear maximum (``B x K``): on an untrained network's flat
    maps two cells can tie to float rounding, and each runtime may then pick another one."""
    if not isinstance(model, models.HeatmapNet):
        return torch.ones(len(images), model.n_points, dtype=torch.bool)
    with torch.no_grad():
        top2 = model.heatmaps(images).flatten(2).topk(2, -1).values
    return top2[..., 0] - top2[..., 1] > 1e-3


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "resnet18", "n_points": 68},
        {"kind": "soft_argmax", "n_points": 68, "width": 8},
        *({**HEATMAP, "decode": d} for d in ("argmax", "argmax_cell", "soft_argmax", "local_soft_argmax")),
    ],
    ids=lambda s: s.get("decode", s["kind"]),
)
def test_onnx_runtime_gives_the_models_own_points_at_any_batch_size(spec):
    torch.manual_seed(0)
    model = models.build(spec).eval()
    onnx = cpu_runtime.OnnxModel(model, 64, threads=1)
    assert onnx.n_points == 68
    for batch in (1, 3):
        images = torch.rand(batch, 1, 64, 64) - 0.5
        with torch.no_grad():
            want = model(images).float()
        got, clear = onnx(images), _clear_peaks(model, images)
        assert got.shape == want.shape == (batch, 68, 2) and got.dtype == torch.float32
        assert clear.float().mean() > 0.8  # most points are compared
        assert torch.allclose(got[clear], want[clear], atol=1e-5), (got - want)[clear].abs().max()


def test_auto_means_onnx_runtime_on_a_cpu_for_float32_only():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert cpu_runtime.installed()
    assert cpu_runtime.resolve("auto", cpu) == "onnxruntime"
    assert cpu_runtime.resolve("auto", cpu, "float32") == "onnxruntime"
    assert cpu_runtime.resolve("auto", cpu, "bfloat16") == "torch"
    assert cpu_runtime.resolve("auto", gpu) == "torch"
    assert cpu_runtime.resolve("torch", cpu) == "torch"
    with pytest.raises(ValueError, match="bfloat16 needs runtime='torch'"):
        cpu_runtime.resolve("onnxruntime", cpu, "bfloat16")
    with pytest.raises(ValueError, match="runs on the CPU"):
        cpu_runtime.resolve("onnxruntime", gpu)
    with pytest.raises(ValueError, match="runtime must be one of"):
        cpu_runtime.resolve("tensorrt", cpu)


def test_landmarker_points_are_the_same_on_either_runtime(tmp_path):
    spec = {**HEATMAP, "decode": "local_soft_argmax"}
    inference = {"flip": True, "offset": np.full((68, 2), 0.01).tolist()}
    path = tiny(
        tmp_path / "heat.pt", spec, preprocess={"input_size": 64, "context": 0.25}, inference=inference
    )
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (120, 150), dtype=np.uint8)
    boxes = [(30, 20, 60, 70), (70, 40, 50, 50)]
    onnx = Landmarker(path, device="cpu")
    torch_ = Landmarker(path, device="cpu", runtime="torch", precision="float32")
    assert (onnx.runtime, torch_.runtime) == ("onnxruntime", "torch")
    assert onnx.flip and onnx.model.decode == "local_soft_argmax"
    np.testing.assert_allclose(onnx.from_boxes(gray, boxes), torch_.from_boxes(gray, boxes), atol=1e-3)
    assert Landmarker.engine_name() == "onnxruntime"
    assert Landmarker.engine_name("torch", "float32") == "float32"
    assert Landmarker(path, device="cpu", precision="bfloat16").runtime == "torch"


def test_fixed_same_padding_leaves_onnx_runtime_no_pad_to_run(tmp_path):
    """The point of :func:`helpers.models.fix_same_padding`: in the graph ONNX Runtime runs,
    every EfficientNet padding is folded into its convolution (timm's own padding leaves a
    ``Pad`` node and a chain of shape operations before each stride-2 layer)."""
    import onnx
    import onnxruntime

    def optimized_ops(model) -> list[str]:
        options = onnxruntime.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
        options.log_severity_level = 3  # its warning that the file is for this CPU only
        graph = cpu_runtime.export(model, 64)
        onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        return [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]

    torch.manual_seed(0)
    model = models.build({**HEATMAP, "decode": "soft_argmax"}).eval()
    assert "Pad" in optimized_ops(model)
    assert "Pad" not in optimized_ops(models.fix_same_padding(model, 64))


def test_exporting_a_padding_fixed_model_prints_no_warnings():
    """A notebook that builds a Landmarker shows its student no exporter warnings."""
    import warnings

    model = models.fix_same_padding(models.build({**HEATMAP, "decode": "soft_argmax"}).eval(), 64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cpu_runtime.export(model, 64)
    assert [str(w.message) for w in caught] == []
