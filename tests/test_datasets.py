"""Keypoint datasets: augmented samples keep their keypoints on their marks."""

import numpy as np
import pytest
import torch

from helpers import geometry
from helpers.augment import NONE, Augment
from helpers.datasets import Item, KeypointDataset
from tests.test_geometry import blob, centroid


def two_blob_dataset(augment, seed=0):
    """Two keypoints of different brightness, so a flip must swap their labels."""
    left, right = np.array([30.0, 40.0]), np.array([70.0, 44.0])
    img = np.clip(blob((100, 80), left, 2.5, 255) + blob((100, 80), right, 2.5, 120), 0, 255).astype(np.uint8)
    items = [Item(img, np.stack([left, right]).astype(np.float32), geometry.IDENTITY)]
    return KeypointDataset(items, (100, 80), augment, flip_permutation=np.array([1, 0]), seed=seed)


def test_augmented_samples_keep_keypoints_on_their_marks():
    ds = two_blob_dataset(Augment(max_rotation=15, max_shift=10, scale=(0.9, 1.1), flip_p=0.5))
    flips = 0
    for _ in range(40):
        image, points, _ = ds.sample(0)
        bright = centroid(np.where(image > 180, image, 0))
        on_bright = int(np.argmin(np.linalg.norm(points - bright, axis=1)))
        np.testing.assert_allclose(points[on_bright], bright, atol=0.35)
        np.testing.assert_allclose(centroid(image, points[1 - on_bright], 8), points[1 - on_bright], atol=0.6)
        # labels are sides of the face: point 0 stays the left one, so after a flip it sits on the dim blob
        assert points[0, 0] < points[1, 0]
        flips += on_bright == 1
    assert 8 < flips < 32  # some flipped, some not


def test_getitem_tensor_and_unit_target_and_inverse_map():
    ds = two_blob_dataset(NONE)
    tensor, target, idx = ds[0]
    assert tensor.shape == (1, 80, 100) and -0.5 <= tensor.min() and tensor.max() <= 0.5
    np.testing.assert_allclose(geometry.from_unit(target.numpy(), (100, 80)), [[30, 40], [70, 44]], atol=1e-4)
    np.testing.assert_allclose(ds.input_to_original(0, np.array([[30.0, 40.0]])), [[30, 40]], atol=1e-6)


def test_flip_requires_permutation():
    with pytest.raises(ValueError, match="permutation"):
        KeypointDataset([], (10, 10), Augment(flip_p=0.5))


def test_records_are_one_per_item_and_kept_by_the_unaugmented_view():
    items = two_blob_dataset(NONE).items
    with pytest.raises(ValueError, match="one per item"):
        KeypointDataset(items, (100, 80), records=["a", "b"])
    ds = KeypointDataset(items, (100, 80), records=("photo.jpg",))
    assert ds.records == ["photo.jpg"] and ds.unaugmented().records == ["photo.jpg"]


def test_unaugmented_is_a_plain_view_that_leaves_the_dataset_as_it_was():
    ds = two_blob_dataset(Augment(max_rotation=30, max_shift=5, flip_p=0.5))
    plain = ds.unaugmented()
    assert plain.augment == NONE and ds.augment != NONE and plain.items is ds.items
    first, again = plain[0][0], plain[0][0]
    assert torch.equal(first, again)  # no random draw


def test_an_equal_budget_uses_every_item_equally_often():
    import numpy as np

    from helpers.datasets import equal_budget

    budget = equal_budget(list(range(7)), 30, seed=1)
    counts = np.bincount(list(budget.indices), minlength=7)
    assert len(budget) == 30 and counts.min() >= 4 and counts.max() <= 5
    assert list(budget.indices) != sorted(budget.indices)  # shuffled
    assert len(equal_budget(list(range(7)), 5)) == 5


def test_each_loader_worker_draws_its_own_augmentations():
    """Eight copies of one photo, so two batches differ only by their augmentations."""
    from torch.utils.data import DataLoader

    from helpers.datasets import seed_worker

    rng = np.random.default_rng(0)
    image = (rng.random((32, 32)) * 255).astype(np.uint8)
    items = [Item(image, np.array([[10.0, 12.0]], np.float32), geometry.IDENTITY)] * 8
    ds = KeypointDataset(items, (32, 32), Augment(flip_p=0.0, max_rotation=30, max_shift=4), seed=0)

    def batches(**seeding):
        loader = DataLoader(ds, 4, num_workers=2, generator=torch.Generator().manual_seed(0), **seeding)
        return [targets for _, targets, _ in loader]  # batch 0 from worker 0, batch 1 from worker 1

    unseeded = batches()
    assert torch.equal(unseeded[0], unseeded[1])  # the bug: both workers copy one generator
    seeded = batches(worker_init_fn=seed_worker)
    assert not torch.allclose(seeded[0], seeded[1])  # each worker its own stream
    assert all(torch.equal(a, b) for a, b in zip(seeded, batches(worker_init_fn=seed_worker)))  # reproducible
    assert not torch.allclose(seeded[0][0], seeded[0][1])  # and a new draw for every item


def test_fingerprint_tells_training_faces_apart():
    from helpers.datasets import fingerprint

    def faces(shift=0.0, n=4):
        items = [
            Item(
                np.zeros((16, 16), np.uint8),
                np.array([[4.0 + k + shift, 8.0]], np.float32),
                geometry.IDENTITY,
            )
            for k in range(n)
        ]
        return KeypointDataset(items, (16, 16))

    base = fingerprint(faces())
    assert fingerprint(faces()) == base  # the same faces, built again
    assert fingerprint(faces(shift=0.5)) != base  # as many faces, other labels
    assert fingerprint(faces(n=5)) != base
    subset = lambda order: fingerprint(torch.utils.data.Subset(faces(), order))
    assert subset([0, 1, 2, 3]) == subset([0, 1, 2, 3]) != subset([1, 0, 2, 3])  # which, and in which order
    both = torch.utils.data.ConcatDataset([faces(), faces(shift=0.5)])
    assert fingerprint(both) != fingerprint(torch.utils.data.ConcatDataset([faces(shift=0.5), faces()]))
    with pytest.raises(TypeError, match="TensorDataset"):
        fingerprint(torch.utils.data.TensorDataset(torch.zeros(2)))
