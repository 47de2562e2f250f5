"""Shared fixtures: the real data sets, fetched from the mirror into ``data/`` once."""

import os
from pathlib import Path

import pytest

from helpers import download

DEFAULT_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _fetch(name):
    mirror = os.environ.get("FKP_DATA_MIRROR") or (DEFAULT_MIRROR if DEFAULT_MIRROR.exists() else None)
    if mirror is None:
        if (download.dataset_dir(name) / download.MARKER).exists():
            return download.dataset_dir(name)
        pytest.skip(f"{name} data not present and no FKP_DATA_MIRROR set")
    return download.fetch(name, mirror=mirror, quiet=True)  # a no-op unless data/ holds another release


@pytest.fixture(scope="session")
def imm_root():
    return _fetch("imm")


@pytest.fixture(scope="session")
def ibug_root():
    return _fetch("ibug")


@pytest.fixture(scope="session")
def youtube_root():
    return _fetch("youtube_faces")


@pytest.fixture(scope="session")
def face_ckpt(tmp_path_factory):
    """A tiny untrained 68-point face model, in the checkpoint format the tools read."""
    from tests.test_checkpoint import tiny

    return tiny(tmp_path_factory.mktemp("ckpt") / "face.pt", preprocess={"input_size": 48, "context": 0.25})
