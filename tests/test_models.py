"""Every model maps images to unit keypoints; BatchNorm folding; pretrained weights."""

import numpy as np
import pytest
import torch

from helpers import checkpoint, models, train


def test_heatmap_resnet_shapes_and_training_criteria():
    m = models.build({"kind": "heatmap_resnet18", "n_points": 68})
    x = torch.zeros(2, 1, 112, 112)
    assert m.heatmaps(x).shape == (2, 68, 28, 28)
    assert m(x).shape == (2, 68, 2)
    y = torch.zeros(2, 68, 2)
    for loss in ("heatmap_gaussian", "heatmap_zero_one", "wing"):
        assert torch.isfinite(train.criterion(train.TrainConfig(loss=loss))(m, x, y))


def test_backbone_from_a_regression_checkpoint(tmp_path):
    reg = models.build({"kind": "resnet18", "n_points": 68})
    path = tmp_path / "reg.pt"
    checkpoint.save(path, {"spec": {"kind": "resnet18", "n_points": 68}, "state_dict": reg.state_dict()})
    heat = models.build({"kind": "heatmap_resnet18", "n_points": 68, "backbone_from": str(path)})
    assert torch.equal(heat.layers[3][1].conv2.weight, reg.net.layer4[1].conv2.weight)
    assert torch.equal(heat.stem[0].weight, reg.net.conv1.weight)


@pytest.mark.parametrize(
    "spec,shape",
    [
        ({"kind": "course_cnn", "n_points": 1, "input_hw": (60, 80)}, (2, 1, 60, 80)),
        (
            {
                "kind": "course_cnn",
                "n_points": 58,
                "input_hw": (120, 160),
                "channels": (8, 8, 8, 8, 8),
                "kernel": 3,
            },
            (2, 1, 120, 160),
        ),
        ({"kind": "soft_argmax", "n_points": 58, "width": 8}, (2, 1, 120, 160)),
    ],
)
def test_models_output_unit_keypoints(spec, shape):
    out = models.build(spec)(torch.zeros(shape))
    assert out.shape == (2, spec["n_points"], 2)


def test_soft_argmax_of_a_peaked_map_is_the_cell_centre():
    logits = torch.full((1, 1, 4, 8), -1e4)
    logits[0, 0, 1, 6] = 0
    # cell (row 1, col 6) of a 4 x 8 map: centre at x = -1 + 13/8, y = -1 + 3/4
    np.testing.assert_allclose(models.soft_argmax(logits)[0, 0].numpy(), [0.625, -0.25], atol=1e-6)
    # two equal peaks decode to their midpoint: the sub-cell precision integral regression gives
    logits[0, 0, 1, 7] = 0
    np.testing.assert_allclose(models.soft_argmax(logits)[0, 0].numpy(), [0.75, -0.25], atol=1e-6)


def test_unknown_model_kind():
    with pytest.raises(ValueError, match="unknown model kind"):
        models.build({"kind": "nope"})


def test_pretrained_option_averages_rgb_conv1(monkeypatch):
    """Offline stand-in for the hub: the ImageNet state dict is a seeded random ResNet18's."""
    import torchvision
    from torchvision.models import _api

    torch.manual_seed(1)
    fake = torchvision.models.resnet18().state_dict()
    monkeypatch.setattr(_api, "load_state_dict_from_url", lambda *a, **k: fake)
    model = models.build({"kind": "resnet18", "n_points": 68, "pretrained": True})
    assert torch.allclose(model.net.conv1.weight, fake["conv1.weight"].mean(1, keepdim=True))
    assert torch.equal(model.net.layer3[0].conv1.weight, fake["layer3.0.conv1.weight"])
    assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 68, 2)
    # a checkpoint of a pretrained model reloads without touching the hub
    monkeypatch.setattr(_api, "load_state_dict_from_url", lambda *a, **k: pytest.fail("hub contacted"))
    models.build({"kind": "resnet18", "n_points": 68, "pretrained": True}, for_loading=True)


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "resnet18", "n_points": 68},
        {"kind": "heatmap_resnet18", "n_points": 68},
        {"kind": "heatmap_efficientnet_lite", "n_points": 68, "pretrained": False},
        {"kind": "regression_efficientnet_lite", "n_points": 68, "pretrained": False},
    ],
)
def test_fuse_batchnorm_keeps_the_outputs(spec):
    torch.manual_seed(0)
    model = models.build(spec)
    model.train()
    with torch.no_grad():  # give the BatchNorms running statistics that are not the identity
        for _ in range(3):
            model.heatmaps(torch.randn(4, 1, 64, 64)) if hasattr(model, "heatmaps") else model(
                torch.randn(4, 1, 64, 64)
            )
    model.eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        before = model(x)
        fused = models.fuse_batchnorm(model)
        after = fused(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert torch.allclose(before, after, atol=1e-4)


def test_the_efficientnet_heatmap_model_makes_stride_4_maps_and_reloads_without_its_weights_file(monkeypatch):
    spec = {"kind": "heatmap_efficientnet_lite", "n_points": 68, "logits": True, "pretrained": True}
    model = models.build(spec).eval()
    with torch.no_grad():
        assert model.heatmaps(torch.zeros(2, 1, 112, 112)).shape == (2, 68, 28, 28)
        assert model(torch.zeros(2, 1, 112, 112)).shape == (2, 68, 2)
    from helpers import backbones

    monkeypatch.setattr(backbones, "weights_file", lambda *a: pytest.fail("weights file read for loading"))
    reloaded = models.build(spec, for_loading=True)
    reloaded.load_state_dict(model.state_dict())


def test_the_pretrained_regression_gives_float32_unit_points_under_bfloat16_and_reloads_from_its_spec(
    monkeypatch,
):
    spec = {"kind": "regression_efficientnet_lite", "n_points": 68, "pretrained": True}
    model = models.build(spec).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.zeros(2, 1, 112, 112))
    assert out.shape == (2, 68, 2) and out.dtype == torch.float32
    from helpers import backbones

    monkeypatch.setattr(backbones, "weights_file", lambda *a: pytest.fail("weights file read for loading"))
    models.build(spec, for_loading=True).load_state_dict(model.state_dict())


def test_a_stride_2_heatmap_model_makes_maps_of_twice_the_resolution_and_reloads_from_its_spec(tmp_path):
    spec = {"kind": "heatmap_efficientnet_lite", "n_points": 68, "logits": True, "stride": 2}
    torch.manual_seed(0)
    model = models.build(spec).eval()
    x = torch.randn(2, 1, 112, 112)
    with torch.no_grad():
        assert model.heatmaps(x).shape == (2, 68, 56, 56)
        before = model(x)
    path = tmp_path / "stride2.pt"
    checkpoint.save(path, {"spec": spec, "state_dict": model.state_dict()})
    with torch.no_grad():
        after = checkpoint.build_model(checkpoint.load_checkpoint(path), path)(x)
    assert torch.equal(before, after)
    # the stride-4 model keeps the names of the weights that stored checkpoints hold
    stride4 = models.build({**spec, "stride": 4}).state_dict()
    assert {k.split(".")[1] for k in stride4 if k.startswith("lateral.")} == {"0", "1", "2", "3"}
    assert {k.split(".")[1] for k in stride4 if k.startswith("smooth.")} == {"0", "1", "2"}


@pytest.mark.parametrize("size", [112, 113, 160])
def test_fixed_same_padding_keeps_the_outputs_and_refuses_another_size(size):
    from timm.layers.conv2d_same import Conv2dSame

    torch.manual_seed(0)
    model = models.build({"kind": "heatmap_efficientnet_lite", "n_points": 68, "pretrained": False}).eval()
    assert any(isinstance(m, Conv2dSame) for m in model.modules())  # what there is to fix
    x = torch.randn(2, 1, size, size)
    with torch.no_grad():
        before = model(x)
        fixed = models.fix_same_padding(model, size)
        after = fixed(x)
    assert not any(isinstance(m, Conv2dSame) for m in fixed.modules())
    # a stride-2 layer pads an even input unevenly (one more at the bottom and right), an odd one evenly
    uneven = [m.uneven for m in fixed.modules() if isinstance(m, models.FixedSamePadConv2d)]
    if size % 2 == 0:
        assert (0, 1, 0, 1) in uneven
    else:
        assert None in uneven
    assert torch.equal(before, after)
    with pytest.raises(ValueError, match="fixed for inputs of"):
        fixed(torch.randn(1, 1, size + 16, size + 16))


def test_fixed_same_padding_wants_eval_mode_and_leaves_a_resnet_alone():
    model = models.build({"kind": "heatmap_efficientnet_lite", "n_points": 68, "pretrained": False})
    with pytest.raises(ValueError, match="eval mode"):
        models.fix_same_padding(model.train(), 112)
    resnet = models.build({"kind": "resnet18", "n_points": 68})
    assert models.fix_same_padding(resnet, 112) is resnet
