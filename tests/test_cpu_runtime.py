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


def _face_items(n, size, seed=0):
    """``n`` random gray crops with 68 random points: calibration and scoring input."""
    from helpers import geometry
    from helpers.datasets import Item, KeypointDataset

    rng = np.random.default_rng(seed)
    items = [
        Item(
            rng.integers(0, 255, (size, size), dtype=np.uint8),
            rng.uniform(8, size - 8, (68, 2)).astype(np.float32),
            geometry.IDENTITY,
        )
        for _ in range(n)
    ]
    return KeypointDataset(items, (size, size))


def test_int8_quantizes_all_but_the_first_stage_and_the_head_and_keeps_the_points(tmp_path, monkeypatch):
    """Every convolution of the encoder and the decoder reads int8 weights, but for the
    encoder's first stage (its stem and first block); the head, which writes the maps, does
    not, and the decoding reads its float32 maps, never an 8-bit copy.
    Most points stay where float32 puts them, while they differ from crop to crop by a third
    of the crop: an untrained network's flat maps have near ties, where a small change picks
    another peak, hence "most"."""
    import onnx

    from helpers import checkpoint, train

    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {**HEATMAP, "decode": "local_soft_argmax"}
    path = tiny(train.checkpoint_path("heat"), spec, preprocess={"input_size": 64, "context": 0.25})
    faces = _face_items(12, 64)
    train.record_int8("heat", faces, n_faces=8)
    graph = checkpoint.int8_graph(checkpoint.load_checkpoint(path))
    nodes = onnx.load_from_string(graph).graph.node
    made_by = {out: node for node in nodes for out in node.output}
    convs = [n for n in nodes if n.op_type == "Conv"]
    int8 = {
        n.name: n.input[1] in made_by and made_by[n.input[1]].op_type == "DequantizeLinear" for n in convs
    }
    assert {name.split("/")[1].split(".")[0] for name in int8} == {"encoder", "lateral", "smooth", "head"}
    first_stage = ("/encoder/conv_stem/", "/encoder/blocks.0/")
    float32 = [name for name, is_int8 in int8.items() if not is_int8]
    assert float32 == [n.name for n in convs if n.name.startswith((*first_stage, "/head/"))]
    assert len(float32) == 4  # the stem, the first block's two convolutions, the head
    (head,) = [n for n in convs if n.name.startswith("/head/")]
    readers = [n.op_type for n in nodes if head.output[0] in n.input]
    assert readers and "QuantizeLinear" not in readers

    model = fix_same_padding_deployed(path)
    int8 = cpu_runtime.OnnxModel(model, 64, threads=1, graph=graph)
    images = torch.stack([faces[i][0] for i in range(12)])
    with torch.no_grad():
        want = model(images)
    moved = (int8(images) - want).abs().amax(-1)  # unit coordinates: 0.01 is 0.3 px of the crop
    assert (want - want.mean(0)).abs().amax(-1).median() > 0.2
    assert (moved < 0.01).float().mean() > 0.8


def fix_same_padding_deployed(path):
    """The checkpoint's model as deployed, its padding fixed for 64 px crops, as it is exported."""
    from helpers import checkpoint

    ckpt = checkpoint.load_checkpoint(path)
    return models.fix_same_padding(checkpoint.build_deployed(ckpt, path, "cpu"), 64)


def test_the_landmarker_runs_int8_where_the_checkpoint_chose_it(tmp_path, monkeypatch):
    from helpers import checkpoint, train
    from helpers.checkpoint import CheckpointError

    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {**HEATMAP, "decode": "local_soft_argmax"}
    path = tiny(train.checkpoint_path("heat"), spec, preprocess={"input_size": 64, "context": 0.25})
    with pytest.raises(CheckpointError, match=r"heat.pt: has no int8 graph"):
        Landmarker(path, device="cpu", precision="int8")
    checkpoint.update(path, inference={"precision": "int8"})
    with pytest.raises(CheckpointError, match=r"heat.pt: has no int8 graph"):
        Landmarker(path, device="cpu")
    checkpoint.update(path, inference={"precision": "int4"})
    with pytest.raises(CheckpointError, match="precision must be float32 or int8"):
        Landmarker(path, device="cpu")

    checkpoint.update(path, inference={"precision": "float32"})
    train.record_int8("heat", _face_items(8, 64), n_faces=8)
    assert Landmarker(path, device="cpu").engine == "onnxruntime"  # chosen: float32
    checkpoint.update(path, inference={"precision": "int8"})
    int8, plain = Landmarker(path, device="cpu"), Landmarker(path, device="cpu", precision="float32")
    torch_ = Landmarker(path, device="cpu", runtime="torch")
    assert (int8.engine, plain.engine, torch_.runtime) == ("onnxruntime int8", "onnxruntime", "torch")
    assert Landmarker.engine_name(precision="int8") == "onnxruntime int8"
    with pytest.raises(ValueError, match="int8 runs in ONNX Runtime"):
        Landmarker(path, device="cpu", runtime="torch", precision="int8")
    gray = np.random.default_rng(0).integers(0, 255, (120, 150), dtype=np.uint8)
    boxes = [(30, 20, 60, 70), (70, 40, 50, 50), (10, 10, 80, 80)]
    moved = np.abs(int8.from_boxes(gray, boxes) - plain.from_boxes(gray, boxes)).max(-1)
    assert (moved < 0.5).mean() > 0.8  # pixels of the photo; most points, as in the test above

    train.record_inference("heat", decode="argmax")  # the graph holds the decoder it was made with
    with pytest.raises(CheckpointError, match=r"heat.pt: its int8 graph holds decoder .*local_soft_argmax"):
        Landmarker(path, device="cpu")
    assert Landmarker(path, device="cpu", precision="float32").model.decode == "argmax"
