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


def in_repo(path: Path) -> str | None:
    """``path`` relative to the repo root (``checkpoints/x.pt``) where it lies inside the repo,
    else ``None``: how files are named in what gets committed (``metrics.json``, a notebook's
    output), so that no one machine's absolute path is."""
    path = Path(path)
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else None


def smoke() -> bool:
    """True when ``FKP_SMOKE`` asks for the tiny CI run (tiny subsets, one epoch)."""
    return os.environ.get("FKP_SMOKE", "").strip().lower() not in ("", "0", "false", "no")


def device(prefer=None):
    """CUDA when there is one, else CPU (``FKP_DEVICE`` or ``prefer`` overrides); asking for a
    device this machine lacks is a ``ValueError`` that says so, not a later CUDA traceback."""
    import torch

    name = prefer or os.environ.get("FKP_DEVICE")
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}: use cpu or cuda") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but PyTorch sees no CUDA GPU here: use cpu")
    return chosen


PRESETS = ("cpu", "cuda")


def preset(device) -> str:
    """Which settings the notebooks' parameters cells pick: ``"cuda"`` on a GPU, else ``"cpu"``.

    ``FKP_PRESET`` overrides the hardware's choice, so the tests can run the CUDA preset's code
    on a CPU (in smoke mode, where its sizes do not matter)."""
    import torch

    name = os.environ.get("FKP_PRESET", "").strip().lower()
    name = name or ("cuda" if torch.device(device).type == "cuda" else "cpu")
    if name not in PRESETS:
        raise ValueError(f"FKP_PRESET={name!r}: use one of {', '.join(PRESETS)}")
    return name


def bf16_is_fast(device) -> bool:
    """Whether bfloat16 pays on ``device``: a CUDA GPU that supports it, or a CPU with native
    bfloat16 instructions (AVX512-BF16 or AMX, through oneDNN).  On other CPUs bfloat16 is
    emulated, and training under its autocast runs about ten times slower than float32."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return (
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so a re-run draws the same augmentations and weights."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
