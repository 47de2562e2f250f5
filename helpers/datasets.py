"""In-memory keypoint datasets: decode once, augment per item, remember how to map back.

Every item is built from a *base frame*: the image already cropped or resized once (so no
epoch spends time decoding JPEGs), with ``base_matrix`` mapping the original photo's pixels
into it.  Augmentation warps the base frame to the model's input; predictions are mapped
back to the original photo with :meth:`KeypointDataset.input_to_original`.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from . import geometry
from .augment import NONE, Augment, flip_labels
from .images import centre, load_image, to_unit_float


@dataclass
class Item:
    image: np.ndarray  # uint8 base frame, (H, W)
    points: np.ndarray  # (K, 2) in the base frame
    base_matrix: np.ndarray  # original photo -> base frame


class KeypointDataset(Dataset):
    """Yields ``(image, target, index)``: a ``1 x H x W`` float tensor in [-0.5, 0.5] (the
    course's normalisation), the ``K x 2`` keypoints in unit coordinates
    (:func:`helpers.geometry.to_unit`), and the item's index.

    ``input_wh`` is the model's input size; ``base_to_input`` maps the base frame onto it
    before augmentation (identity when the base frame already has the input size).
    ``records``: where each item came from (a face's photo, box and labels, for the 68-point
    parts' detector and scoring), one per item; ``None`` where the items are all there is.
    """

    def __init__(
        self,
        items: Sequence[Item],
        input_wh: tuple[int, int],
        augment: Augment = NONE,
        flip_permutation: np.ndarray | None = None,
        base_to_input: np.ndarray | None = None,
        seed: int = 0,
        records: Sequence | None = None,
    ):
        if augment.flip_p and flip_permutation is None:
            raise ValueError("horizontal flips need the markup's left/right permutation")
        if records is not None and len(records) != len(items):
            raise ValueError(f"{len(records)} records for {len(items)} items: one per item")
        self.items = list(items)
        if records is not None:
            self.records = list(records)
        self.input_wh = tuple(input_wh)
        self.augment = augment
        self.flip_permutation = flip_permutation
        self.base_to_input = geometry.IDENTITY if base_to_input is None else base_to_input
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, index: int, augment: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(uint8 image, points in input pixels, original->input matrix)`` for item ``index``."""
        item = self.items[index]
        m = self.base_to_input
        flipped = False
        if augment and self.augment != NONE:
            aug, flipped = self.augment.sample_affine(self.rng, self.input_wh)
            m = geometry.compose(m, aug)
        same = np.allclose(m, geometry.IDENTITY) and item.image.shape[::-1] == self.input_wh
        image = item.image if same else geometry.warp(item.image, m, self.input_wh)
        points = geometry.apply(m, item.points)
        if flipped:
            points = flip_labels(points, self.flip_permutation)
        return image, points, geometry.compose(item.base_matrix, m)

    def __getitem__(self, index: int):
        image, points, _ = self.sample(index)
        tensor = to_unit_float(image)
        if self.augment != NONE:
            tensor = self.augment.jitter(self.rng, tensor)
        target = torch.from_numpy(geometry.to_unit(points, self.input_wh))
        return centre(tensor), target, index

    def reseed(self, seed: int) -> None:
        """Start a new random stream for the augmentations (see :func:`seed_worker`)."""
        self.rng = np.random.default_rng(seed)

    def unaugmented(self) -> KeypointDataset:
        """The same items as they are, without augmentation: what predictions are scored on.
        A shallow copy, so the frames are shared, not duplicated."""
        plain = copy.copy(self)
        plain.augment = NONE
        return plain

    def input_to_original(self, index: int, points_input: np.ndarray) -> np.ndarray:
        """Map points predicted on the un-augmented input of item ``index`` back to its photo."""
        m = geometry.compose(self.items[index].base_matrix, self.base_to_input)
        return geometry.apply(geometry.invert(m), points_input)

    def original_points(self, index: int) -> np.ndarray:
        item = self.items[index]
        return geometry.apply(geometry.invert(item.base_matrix), item.points)


def resized_items(paths: Sequence, points: Sequence[np.ndarray], input_wh: tuple[int, int]) -> list[Item]:
    """Whole photos resized to the input size once (area-averaged), for the IMM parts."""
    items = []
    for path, pts in zip(paths, points):
        image = load_image(path, gray=True)
        m = geometry.resize((image.shape[1], image.shape[0]), input_wh)
        items.append(Item(geometry.warp(image, m, input_wh), geometry.apply(m, pts).astype(np.float32), m))
    return items


def imm_datasets(
    root, input_wh: tuple[int, int], points, augment: Augment = NONE, limit: int | None = None, seed: int = 0
) -> tuple[KeypointDataset, KeypointDataset]:
    """Course-split IMM training and validation datasets for the markup points ``points``
    (e.g. ``[imm.NOSE_TIP]`` or ``range(58)``); ``limit`` keeps the first few of each (smoke runs)."""
    from . import imm

    points = list(points)
    train, val = imm.course_split(imm.load_imm(root))
    if limit:
        train, val = train[:limit], val[: max(2, limit // 4)]
    # a subset of points flips onto itself only if it is closed under the permutation
    perm_full = imm.FLIP_PERMUTATION
    index = {p: k for k, p in enumerate(points)}
    perm = (
        np.array([index[perm_full[p]] for p in points])
        if all(perm_full[p] in index for p in points)
        else None
    )
    if perm is None and augment.flip_p:
        raise ValueError("these points have no mirror images among themselves; set flip_p=0")

    def make(samples, aug):
        items = resized_items([s.image_path for s in samples], [s.points[points] for s in samples], input_wh)
        return KeypointDataset(items, input_wh, aug, perm, seed=seed)

    train_ds, val_ds = make(train, augment), make(val, NONE)
    train_ds.samples, val_ds.samples = train, val
    return train_ds, val_ds


def equal_budget(dataset: Dataset, n_items: int, seed: int = 0) -> torch.utils.data.Subset:
    """``n_items`` items of ``dataset``, each used equally often (to within one), in random order.

    One pass over it is a training budget that does not depend on the data set's size, so runs
    on 800 and on 1,600 faces can be given the same number of updates and compared fairly.
    An augmenting dataset draws a new augmentation each time an item comes round again."""
    rng = np.random.default_rng(seed)
    rounds = -(-n_items // len(dataset))
    order = np.concatenate([rng.permutation(len(dataset)) for _ in range(rounds)])[:n_items]
    return torch.utils.data.Subset(dataset, order.tolist())


def seed_worker(worker_id: int) -> None:
    """A DataLoader ``worker_init_fn`` that gives each worker its own augmentations.

    Every worker process holds a copy of the dataset, random generator included, so without it
    all workers would draw the same augmentations.  torch seeds each worker differently (the
    loader's base seed plus the worker's id, the base drawn from the loader's generator), and
    that seed restarts the copy's stream: distinct in every worker, the same on a re-run."""
    info = torch.utils.data.get_worker_info()
    for ds in keypoint_datasets(info.dataset):
        ds.reseed(info.seed % 2**32)


def keypoint_datasets(dataset: Dataset) -> list[KeypointDataset]:
    """The :class:`KeypointDataset` objects inside ``dataset``, through ``Subset`` and
    ``ConcatDataset``, in order."""
    found, stack = [], [dataset]
    while stack:
        ds = stack.pop(0)
        if isinstance(ds, KeypointDataset):
            found.append(ds)
        stack.extend(getattr(ds, "datasets", []))  # ConcatDataset
        if hasattr(ds, "dataset"):  # Subset
            stack.append(ds.dataset)
    return found


def fingerprint(dataset: Dataset) -> str:
    """A digest of the labelled faces ``dataset`` yields, in order, through ``Subset`` and
    ``ConcatDataset``: stored with a trained run so that a run trained on other faces is not
    taken for it.  The number of faces alone misses a split that moved faces but kept their
    count; the labels tell faces apart (two faces never share 68 points), at no cost of
    reading images."""
    digest = hashlib.sha256()

    def feed(ds):
        if isinstance(ds, KeypointDataset):
            digest.update(f"faces {len(ds.items)}".encode())
            for item in ds.items:
                digest.update(np.ascontiguousarray(item.points, np.float32).tobytes())
        elif isinstance(ds, torch.utils.data.Subset):
            digest.update(b"subset")
            digest.update(np.asarray(ds.indices, np.int64).tobytes())
            feed(ds.dataset)
        elif isinstance(ds, torch.utils.data.ConcatDataset):
            digest.update(f"concat {len(ds.datasets)}".encode())
            for part in ds.datasets:
                feed(part)
        else:
            raise TypeError(f"cannot fingerprint a {type(ds).__name__}: expected keypoint datasets")

    feed(dataset)
    return digest.hexdigest()[:16]
