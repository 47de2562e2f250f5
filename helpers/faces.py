"""Face crops for the 68-point parts: crop by box with context, cache, augment, map back.

A face is cropped as the square centred on its box with side ``(1 + context) * max(w, h)``.
For training, a wider *base* crop (``base_scale`` times the input crop, at the same pixel
scale) is decoded once and cached under ``cache/``; augmentation then rotates, zooms,
shifts and flips inside it, which also stands in for the jitter of a face detector's box.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from . import config, geometry
from .augment import NONE, Augment
from .datasets import Item, KeypointDataset
from .images import load_image
from .landmarks68 import FLIP_PERMUTATION, FaceRecord, box_of

DEFAULT_CONTEXT = 0.25


def crop_matrix(box, input_size: int, context: float = DEFAULT_CONTEXT) -> np.ndarray:
    """Original photo -> model input for a face in ``box`` (left, top, width, height)."""
    return geometry.square_crop(box, input_size, context)


def base_to_input(input_size: int, context: float, base_scale: float) -> np.ndarray:
    """The fixed map from a cached base crop to the (un-augmented) input crop; both are centred
    on the box, so it does not depend on the box."""
    unit = (0.0, 0.0, 100.0, 100.0)
    base = geometry.square_crop(unit, round(input_size * base_scale), (1 + context) * base_scale - 1)
    return geometry.compose(geometry.invert(base), crop_matrix(unit, input_size, context))


CROP_VERSION = 2  # bump when the crops change for the same records (2: exact pre-shrink in geometry.warp)


def _cache_key(records: Sequence[FaceRecord], *params) -> str:
    h = hashlib.sha256(json.dumps([str(p) for p in (CROP_VERSION, *params)]).encode())
    for r in records:
        h.update(f"{r.image_path}|{r.box}|".encode())
        h.update(np.ascontiguousarray(r.points, np.float32).tobytes())
    return h.hexdigest()[:16]


def crop_items(
    records: Sequence[FaceRecord],
    input_size: int,
    context: float = DEFAULT_CONTEXT,
    base_scale: float = 1.4,
    cache_dir: Path | None = None,
    desc: str = "cropping faces",
) -> list[Item]:
    """Base crops of every face (grayscale), decoded once and cached as one ``.npz`` file.

    Boxes partly outside the photo are fine: the crop repeats the border pixels."""
    size = round(input_size * base_scale)
    base_context = (1 + context) * base_scale - 1
    cache_dir = Path(cache_dir or config.CACHE_DIR)
    path = cache_dir / f"faces_{_cache_key(records, input_size, context, base_scale)}.npz"
    if path.exists():
        data = np.load(path)
        return [Item(c, p, m) for c, p, m in zip(data["crops"], data["points"], data["matrices"])]
    crops = np.empty((len(records), size, size), np.uint8)
    points = np.empty((len(records), len(records[0].points) if records else 0, 2), np.float32)
    matrices = np.empty((len(records), 2, 3))
    image, last = None, None
    for k, r in enumerate(tqdm(records, desc=desc, leave=False, mininterval=10)):
        if r.image_path != last:  # faces of one photo are consecutive in dlib XML
            image, last = load_image(r.image_path), r.image_path
        m = geometry.square_crop(r.box, size, base_context)
        crops[k] = geometry.warp(image, m, (size, size))
        points[k] = geometry.apply(m, r.points)
        matrices[k] = m
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, crops=crops, points=points, matrices=matrices)
    return [Item(c, p, m) for c, p, m in zip(crops, points, matrices)]


def records_boxed_by(
    paths: Sequence, points: Sequence[np.ndarray], box_points: Sequence[np.ndarray] | None = None
) -> list[FaceRecord]:
    """Face records whose boxes are the bounding boxes of ``box_points`` (say, a first stage's
    predictions, so validation never sees a box made from its own labels) or of the labels."""
    box_points = points if box_points is None else box_points
    return [
        FaceRecord(Path(p), box_of(np.asarray(b)), np.asarray(pts, np.float32))
        for p, pts, b in zip(paths, points, box_points)
    ]


class Splits(NamedTuple):
    train: list[FaceRecord]
    val: list[FaceRecord]
    test: list[FaceRecord]
    sources: dict[str, tuple[int, str]]
    youtube_val: list[FaceRecord]


def ibug_splits(
    ibug_root: Path,
    youtube_root: Path,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
    youtube_val_fraction: float = 0.1,
) -> Splits:
    """The 68-point parts' data: train, validation and test face lists and a table of sources.

    Training: 300-W train XML minus ``val_fraction`` of its photos, plus the labelled
    YouTube-Faces frames (training and test CSVs) minus ``youtube_val_fraction`` of their
    people.  Validation: those held-out 300-W photos (``val``, for choices) and YouTube people
    (``youtube_val``, a second domain, to report what fine-tuning on 300-W costs elsewhere).
    Test: the 300-W test XML, never trained on.  ``limit`` keeps a few of each (smoke runs)."""
    from .landmarks68 import load_dlib_xml, load_youtube_csv, person_of, photo_of, split_by_group

    ibug_train, ibug_val = split_by_group(
        load_dlib_xml(Path(ibug_root) / "labels_ibug_300W_train.xml"), val_fraction, photo_of, seed
    )
    youtube = load_youtube_csv(
        Path(youtube_root) / "training_frames_keypoints.csv", Path(youtube_root) / "training"
    ) + load_youtube_csv(Path(youtube_root) / "test_frames_keypoints.csv", Path(youtube_root) / "test")
    youtube, youtube_val = split_by_group(youtube, youtube_val_fraction, person_of, seed)
    test = load_dlib_xml(Path(ibug_root) / "labels_ibug_300W_test.xml")
    if limit:
        ibug_train, ibug_val, youtube, youtube_val, test = (
            ibug_train[:limit],
            ibug_val[: limit // 2],
            youtube[:limit],
            youtube_val[: limit // 2],
            test[: limit // 2],
        )
    yt_share = round(100 * youtube_val_fraction)
    sources = {
        f"300-W train XML, {100 - round(100 * val_fraction)} % of photos": (len(ibug_train), "training"),
        f"YouTube-Faces 68, {100 - yt_share} % of people": (len(youtube), "training"),
        f"300-W train XML, {round(100 * val_fraction)} % of photos": (
            len(ibug_val),
            "validation (model selection)",
        ),
        f"YouTube-Faces 68, {yt_share} % of people": (len(youtube_val), "validation, a second domain"),
        "300-W test XML": (len(test), "test (scored once)"),
    }
    return Splits(ibug_train + youtube, ibug_val, test, sources, youtube_val)


FACE_AUGMENT = Augment(
    max_rotation=20, max_shift=6, scale=(0.9, 1.1), flip_p=0.5, brightness=0.3, contrast=0.3
)


def face_dataset(
    records: Sequence[FaceRecord],
    input_size: int,
    augment: Augment = NONE,
    context: float = DEFAULT_CONTEXT,
    base_scale: float = 1.4,
    seed: int = 0,
    desc: str = "cropping faces",
    flip_permutation: np.ndarray = FLIP_PERMUTATION,
) -> KeypointDataset:
    """A :class:`KeypointDataset` of face crops (``input_size`` square); 68-point markup unless
    another ``flip_permutation`` says otherwise."""
    items = crop_items(records, input_size, context, base_scale, desc=desc)
    return KeypointDataset(
        items,
        (input_size, input_size),
        augment,
        flip_permutation,
        base_to_input(input_size, context, base_scale),
        seed=seed,
        records=records,
    )


@dataclass
class IbugData:
    """Everything the 68-point parts (notebooks 03 and 04) train, choose and score on, built once.

    ``train`` is the mix of 300-W and YouTube faces (augmented); ``tune`` the 300-W training
    faces alone (augmented), for the second training stage; ``offset`` the same faces without
    augmentation, for :func:`helpers.inference.mean_residual`; ``val`` the held-out 300-W
    photos, which make every choice; ``youtube_val`` the held-out YouTube people, reported.
    """

    splits: Splits
    train: KeypointDataset
    tune: KeypointDataset
    offset: KeypointDataset
    val: KeypointDataset
    youtube_val: KeypointDataset
    preprocess: dict

    @property
    def test(self) -> list[FaceRecord]:
        return self.splits.test

    @property
    def validation_sets(self) -> dict[str, KeypointDataset]:
        return {"300-W validation": self.val, "YouTube validation": self.youtube_val}

    def every_300w_face(self, augment: bool = True, seed: int = 0) -> KeypointDataset:
        """The 300-W training and validation faces together (augmented as ``tune``, or not, as
        ``offset``): what a final model trains on once validation has made every choice.  The
        validation crops are cut like the training ones, so the two join as they are; the
        joined set draws its own augmentations, from ``seed``."""
        base = self.tune if augment else self.offset
        if not np.allclose(base.base_to_input, self.val.base_to_input):
            raise ValueError("the training and validation faces were cropped differently")
        return KeypointDataset(
            base.items + self.val.items,
            base.input_wh,
            base.augment,
            base.flip_permutation,
            base.base_to_input,
            seed=seed,
            records=base.records + self.val.records,
        )

    def score(self, model) -> dict[str, float]:
        """Validation NME (%) of ``model`` on each validation set: one pass, no offset."""
        from .inference import nme_percent

        return {name: nme_percent(model, ds) for name, ds in self.validation_sets.items()}


def ibug_data(
    ibug_root: Path,
    youtube_root: Path,
    input_size: int,
    context: float = DEFAULT_CONTEXT,
    augment: Augment = FACE_AUGMENT,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
) -> IbugData:
    """The splits of :func:`ibug_splits` as face-crop datasets of ``input_size`` pixels."""
    splits = ibug_splits(ibug_root, youtube_root, val_fraction, seed, limit)
    ibug_train = [f for f in splits.train if f.image_path.is_relative_to(ibug_root)]

    def crops(records, aug=NONE, what=""):
        return face_dataset(records, input_size, aug, context, seed=seed, desc=f"cropping {what}")

    return IbugData(
        splits,
        train=crops(splits.train, augment, "training faces"),
        tune=crops(ibug_train, augment, "300-W training faces"),
        offset=crops(ibug_train, what="300-W training faces"),
        val=crops(splits.val, what="validation faces"),
        youtube_val=crops(splits.youtube_val, what="YouTube validation faces"),
        preprocess={"input_size": input_size, "context": context},
    )
