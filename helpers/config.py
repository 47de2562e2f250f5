"""Paths, the smoke switch, device choice and seeding: the settings every notebook shares."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("FKP_DATA_DIR", ROOT / "data"))
CHECKPOINT_DIR = Path(os.environ.get("FKP_CHECKPOINT_DIR", ROOT / "checkpoints"))
CACHE_DIR = Path(os.environ.get("FKP_CACHE_DIR", ROOT / "cache"))
REPORT_DIR = ROOT / "report"


def smoke() -> bool:
    """True when ``FKP_SMOKE`` asks for the tiny CI run (tiny subsets, one epoch)."""
    return os.environ.get("FKP_SMOKE", "").strip().lower() not in ("", "0", "false", "no")


def device(prefer: str | None = None):
    """CUDA when there is one, else CPU (``FKP_DEVICE`` or ``prefer`` overrides)."""
    import torch

    name = prefer or os.environ.get("FKP_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so a re-run draws the same augmentations and weights."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
