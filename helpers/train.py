"""The one training loop every notebook calls, with checkpoints so a re-run does not retrain.

Run ``name`` is kept in ``checkpoints/<name>.pt`` (the format: :mod:`helpers.checkpoint`): the
model ``spec``, the training settings, the best weights (lowest validation loss, or NME: see
``TrainConfig.select``) and the loss history.  :func:`fit` reuses it when both spec and settings
match, unless ``retrain=True`` or ``FKP_RETRAIN=1``; any change of settings trains afresh.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import checkpoint, config, inference
from .checkpoint import checkpoint_path  # noqa: F401  (the notebooks name runs through train)
from .cpu_runtime import FLOAT32_MODULES, quantize
from .datasets import fingerprint, keypoint_datasets, seed_worker
from .models import build, fix_same_padding


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_nme: list[float] = field(default_factory=list)  # per epoch, where the run selects by NME
    # the same two for the moving average of the weights, where the run keeps one (ema_epochs)
    ema_val_loss: list[float] = field(default_factory=list)
    ema_val_nme: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_is_ema: bool = False  # whether the kept weights are the average's, not the network's
    seconds: float = 0.0
    images_per_second: float = 0.0
    device: str = ""


def wing_loss(pred: torch.Tensor, target: torch.Tensor, w: float = 0.05, eps: float = 0.01) -> torch.Tensor:
    """Wing loss (Feng et al., CVPR 2018) on unit coordinates: log-shaped for small errors so
    the last pixels keep a strong gradient, L1 for large ones.  ``w`` = 0.05 is 2.5 % of
    the frame."""
    d = (pred - target).abs()
    c = w - w * math.log1p(w / eps)
    return torch.where(d < w, w * torch.log1p(d / eps), d - c).mean()


LOSSES = {
    "l1": nn.functional.l1_loss,
    "mse": nn.functional.mse_loss,
    "smooth_l1": nn.functional.smooth_l1_loss,
    "wing": wing_loss,
}
HEATMAP_LOSSES = ("heatmap_gaussian", "heatmap_gaussian_ce", "heatmap_zero_one")
# TrainConfig.select: what picks the epoch whose weights a run keeps; the last two keep the last
# epoch's (the network's, or its moving average's) and need no validation faces
SELECT = ("loss", "nme", "last", "last_average")


def criterion(cfg: TrainConfig):
    """``loss(model, images, targets)``: coordinate losses compare ``model(images)`` with the
    unit-coordinate targets; heatmap losses compare ``model.heatmaps(images)`` with maps made
    from them (Gaussian: MSE, or cross-entropy of the cells' softmax against the normalised
    Gaussian, plus ``point_weight`` times an L1 loss on its soft-argmax points; zero-one:
    cross-entropy over the cells)."""
    from . import heatmaps

    if cfg.loss == "heatmap_gaussian":
        return lambda model, x, y: heatmaps.gaussian_mse(model.heatmaps(x), y, cfg.sigma)
    if cfg.loss == "heatmap_gaussian_ce":
        return lambda model, x, y: heatmaps.gaussian_ce_with_points(
            model.heatmaps(x), y, cfg.sigma, cfg.point_weight
        )
    if cfg.loss == "heatmap_zero_one":
        return lambda model, x, y: heatmaps.zero_one_cross_entropy(model.heatmaps(x), y)
    if cfg.loss not in LOSSES:
        raise ValueError(f"unknown loss {cfg.loss!r}; known: {', '.join([*LOSSES, *HEATMAP_LOSSES])}")
    return lambda model, x, y: LOSSES[cfg.loss](model(x), y)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 16
    loss: str = "l1"
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # or "constant"
    seed: int = 0
    sigma: float = 1.5  # Gaussian heatmap targets: standard deviation in heatmap cells
    # mixed precision (:func:`mixed_precision`): ~1.7x faster ResNet training on AVX512-BF16 CPUs,
    # more on GPUs; about ten times slower on CPUs without native bfloat16 (config.bf16_is_fast)
    bf16: bool = False
    # which epoch's weights to keep: the lowest validation "loss", or the lowest validation "nme"
    # of the decoded points (68-point markup).  A heatmap model's cross-entropy only stands in
    # for the point error: it also weighs how sharp a map is around a peak in the right place,
    # so the two can pick different epochs (notebook 04 shows by how much).  "last" keeps the
    # network after its last epoch and "last_average" the moving average of its weights then:
    # for a final model trained again on the validation faces too, where nothing is left to
    # select by (``stop_after`` stops it where its validation run's choice fell)
    select: str = "loss"
    # 0, or a moving average of the weights over about this many epochs (an exponential one,
    # updated after every step), validated beside the network each epoch: the kept weights are
    # whichever of the two scores better.  The average smooths the last steps' noise out of the
    # weights for free at test time; validating both shows, in the same run, what it buys
    ema_epochs: float = 0.0
    # 0, or the weight of an L1 loss on the soft-argmax points added to a Gaussian cross-entropy
    # (heatmaps.gaussian_ce_with_points): the cross-entropy fits each map's shape, this term the
    # point that the soft-argmax decoder reads off it, stray mass far from the peak included
    point_weight: float = 0.0
    # 0, or stop after this many of the ``epochs`` (the schedule still spans them all): a final
    # model trained again on more faces stops at the epoch its validation run kept, at the same
    # point of the same schedule (with ``select="last"`` or ``"last_average"``)
    stop_after: int = 0
    n_train: int = 0  # filled in by fit, so a different data size retrains

    def __post_init__(self):
        if self.select not in SELECT:
            raise ValueError(f"select={self.select!r}: choose one of {', '.join(SELECT)}")
        if self.point_weight < 0:
            raise ValueError(f"point_weight={self.point_weight!r}: 0 (no point loss) or a positive weight")
        if self.point_weight and self.loss != "heatmap_gaussian_ce":
            raise ValueError(f"point_weight is added to loss='heatmap_gaussian_ce' only, not {self.loss!r}")
        if self.ema_epochs < 0:
            raise ValueError(f"ema_epochs={self.ema_epochs!r}: 0 (no average) or a positive number of epochs")
        if self.select == "last_average" and not self.ema_epochs:
            raise ValueError("select='last_average' keeps the moving average: set ema_epochs too")
        if not 0 <= self.stop_after <= self.epochs:
            raise ValueError(f"stop_after={self.stop_after!r}: 0 (all epochs) up to epochs={self.epochs}")
        if self.stop_after and self.selects_by_validation:
            raise ValueError("stop_after keeps the epoch it stops at: use select='last' or 'last_average'")

    @property
    def epochs_run(self) -> int:
        return self.stop_after or self.epochs

    @property
    def selects_by_validation(self) -> bool:
        return self.select in ("loss", "nme")


def record_inference(name: str, **settings) -> None:
    """Store inference defaults chosen after training (``flip`` and ``offset``, see
    :func:`helpers.inference.choose_settings`; a heatmap model's ``decode`` and ``beta``) in run
    ``name``'s checkpoint, where :class:`helpers.landmarker.Landmarker` reads them."""
    checkpoint.update(checkpoint_path(name), inference=settings)


def record_int8(name: str, faces, n_faces: int = 100) -> None:
    """Quantize run ``name``'s model as deployed (after its decoder is chosen: the graph holds
    it) to the int8 graph its checkpoint keeps (:func:`quantized_graph`).  Whether the tools
    run it by default is chosen on validation afterwards (``inference`` ``precision``)."""
    checkpoint.store_int8_graph(checkpoint_path(name), quantized_graph(name, faces, n_faces))


def quantized_graph(name: str, faces, n_faces: int = 100, float_modules=FLOAT32_MODULES) -> bytes:
    """Run ``name``'s model as deployed, quantized (:func:`helpers.cpu_runtime.quantize`, which
    keeps ``float_modules`` in float32), calibrated on ``n_faces`` crops spread evenly over
    ``faces``, un-augmented: training faces, never the validation faces that judge it."""
    path = checkpoint_path(name)
    ckpt = checkpoint.load_checkpoint(path)
    size = ckpt["preprocess"]["input_size"]
    model = fix_same_padding(checkpoint.build_deployed(ckpt, path, "cpu"), size)
    plain = faces.unaugmented()
    picks = np.linspace(0, len(plain) - 1, min(n_faces, len(plain))).round().astype(int)
    crops = torch.stack([plain[int(i)][0] for i in picks])
    return quantize(model, size, crops, float_modules=float_modules)


def run_epoch(model, loader, loss_fn, device, optimizer=None, scheduler=None, amp=None, scaler=None) -> float:
    """One pass over ``loader``: a training pass when given an optimizer, else evaluation.

    The loop notebook 01 writes out: forward, loss, ``backward``, step.  ``amp`` (``torch.bfloat16``
    or ``torch.float16``) runs the forward pass in that precision under autocast (the weights,
    gradients and loss stay float32); float16 also needs a ``scaler`` (``torch.amp.GradScaler``),
    which scales the loss up so that small gradients do not round to zero."""
    model.train(optimizer is not None)
    total, count = 0.0, 0
    with torch.set_grad_enabled(optimizer is not None):
        for images, targets, _ in loader:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                loss = loss_fn(model, images, targets).float()
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                if scheduler is not None:
                    scheduler.step()
            total += loss.item() * len(images)
            count += len(images)
    return total / max(count, 1)


def mixed_precision(device) -> torch.dtype:
    """The autocast precision for training on ``device``: bfloat16, except on a GPU that lacks
    it (before Ampere), where float16 with a gradient scaler takes its place."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def fit(
    spec: dict,
    train_ds,
    val_ds,
    name: str,
    cfg: TrainConfig = TrainConfig(),
    retrain: bool = False,
    device=None,
    progress: bool = True,
    extra: dict | None = None,
    init_from: str | Path | None = None,
    workers: int = 0,
    save_every_s: float = 300.0,
) -> tuple[nn.Module, History]:
    """Train ``build(spec)`` on ``train_ds`` and keep the weights of the epoch with the lowest
    validation loss (``cfg.select == "loss"``) or validation NME (``"nme"``), or those of the
    last epoch (``"last"``, ``"last_average"``; ``val_ds`` may then be ``None``).

    ``extra`` is stored in the checkpoint beside the weights (e.g. the input size a
    prediction tool needs to rebuild the preprocessing).  ``init_from`` (a checkpoint of the
    same spec) starts from its best weights instead: fine-tuning.  ``workers`` loader processes
    prepare the batches (:func:`helpers.datasets.seed_worker` gives each its own augmentations).
    A stored run is reused only if it started from the same weights: the same ``init_from`` run
    and, for a spec with a ``backbone_from`` checkpoint (Part 4's heatmaps on Part 3's backbone),
    the same run of that checkpoint; the path alone would not notice that it was trained again.
    It must also store the same ``extra``, so a run on crops of another size is trained again,
    and the same training faces (:func:`helpers.datasets.fingerprint`) with the same
    augmentation: a run from before a change to the split is trained again, not reused.

    An interrupted run (a Colab session that timed out, a closed laptop) continues where it
    stopped: at the end of an epoch, at most every ``save_every_s`` seconds, the whole training
    state goes to :func:`helpers.checkpoint.resume_path` (weights, optimizer, schedule, best
    weights so far, history and every random stream), and a later call with the same run and
    settings picks it up.  With ``workers=0`` the result is the one an uninterrupted run gives;
    with worker processes, the augmentations after the restart are drawn afresh.
    """
    device = torch.device(device or config.device())
    if val_ds is None and cfg.selects_by_validation:
        raise ValueError(f"{name}: select={cfg.select!r} needs validation faces (val_ds is None)")
    cfg = TrainConfig(**{**asdict(cfg), "n_train": len(train_ds)})
    path = checkpoint_path(name)
    source = checkpoint.load_checkpoint(init_from) if init_from is not None else None
    backbone = spec.get("backbone_from")
    # what shaped the weights besides the settings, stored with them and compared on reuse:
    # the model, its starting weights, the training faces, their augmentation and extra (the
    # crop size)
    made_of = {
        "spec": spec,
        "init_from": checkpoint.origin(init_from, source) if source is not None else None,
        "backbone_origin": checkpoint.origin(checkpoint.resolve(backbone)) if backbone else None,
        "training_faces": fingerprint(train_ds),
        "augment": [asdict(ds.augment) for ds in keypoint_datasets(train_ds)],
        **(extra or {}),
    }
    retrain = retrain or os.environ.get("FKP_RETRAIN", "") not in ("", "0")
    ckpt = (
        None
        if retrain
        else _made_alike(path, cfg, made_of, f"{name}: cannot reuse {path.name}, training again")
    )
    if ckpt is not None:
        model = checkpoint.build_model(ckpt, path, device)
        if progress:
            print(
                f"{name}: loaded {path.name} (trained {ckpt['history']['seconds']:.0f} s); "
                "pass retrain=True to train again"
            )
        return model, History(**ckpt["history"])

    config.seed_everything(cfg.seed)
    model = build(spec)
    if source is not None:
        model.load_state_dict(source["state_dict"])
    model = model.to(device)
    loss_fn = criterion(cfg)
    amp = mixed_precision(device) if cfg.bf16 else None
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    # NHWC convolutions: faster on GPU tensor cores and with oneDNN on CPUs (a ResNet18 trains
    # about 1.2x faster on 2 AVX512 cores), the same results up to rounding
    model = model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(cfg.seed)
    loading = {  # worker processes prepare batches while the GPU trains; each its own augmentations
        "num_workers": workers,
        "worker_init_fn": seed_worker if workers else None,
        "persistent_workers": workers > 0,
        "pin_memory": device.type == "cuda",
    }
    train_loader = DataLoader(
        train_ds,
        cfg.batch_size,
        shuffle=True,
        generator=generator,
        drop_last=len(train_ds) > cfg.batch_size,
        **loading,
    )
    val_loader = DataLoader(val_ds, 64, **loading) if val_ds is not None else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(train_loader)
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=steps, pct_start=0.1)
        if cfg.schedule == "cosine"
        else None
    )

    ema = moving_average(model, cfg.ema_epochs, len(train_loader))
    if ema is not None:  # takes in the weights after every step, outside Part 1's loop
        optimizer.register_step_post_hook(lambda *_: ema.update_parameters(model))
    history, best_state, best = History(device=str(device)), None, float("inf")
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler, "ema": ema}
    resume = checkpoint.resume_path(name)
    state = None if retrain else _made_alike(resume, cfg, made_of, "cannot resume, training from the start")
    if state is not None and isinstance(state.get("resume"), dict):
        history, best_state, best = _restore(state, parts, generator, train_ds)
        if progress:
            done = len(history.train_loss)
            print(f"{name}: resuming from {resume.name} after epoch {done} of {cfg.epochs_run}")
    start = time.perf_counter() - history.seconds
    saved = time.perf_counter()
    # a few updates per run: executed notebooks keep every update in their saved output
    first = len(history.train_loss)
    bar = tqdm(
        range(first, cfg.epochs_run),
        desc=name,
        disable=not progress,
        mininterval=15,
        miniters=max(1, cfg.epochs_run // 8),
        initial=first,
        total=cfg.epochs_run,
    )
    for epoch in bar:
        train_loss = run_epoch(model, train_loader, loss_fn, device, optimizer, scheduler, amp, scaler)
        if not math.isfinite(train_loss):  # its weights are ruined: say so, not fail later on None
            raise FloatingPointError(
                f"{name}: the training loss became {train_loss} in epoch {epoch + 1}; "
                "the run diverged (try a lower learning rate)"
            )
        history.train_loss.append(train_loss)
        shown = {"train": f"{train_loss:.4f}"}
        validated = [("", model, history.val_loss, history.val_nme, False)]
        if ema is not None:
            validated.append(("ema_", ema.module, history.ema_val_loss, history.ema_val_nme, True))
        if val_loader is None:  # a run that keeps its last epoch, without validation faces
            validated = []
        for prefix, net, losses, nmes, is_ema in validated:
            losses.append(run_epoch(net, val_loader, loss_fn, device))
            shown[f"{prefix}val"] = f"{losses[-1]:.4f}"
            if cfg.select == "nme":
                nmes.append(inference.nme_percent(net, val_ds))
                shown[f"{prefix}val_nme"] = f"{nmes[-1]:.3f}"
            measure = nmes[-1] if cfg.select == "nme" else losses[-1]
            if cfg.selects_by_validation and measure < best:
                best, history.best_epoch, history.best_is_ema = measure, epoch, is_ema
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        bar.set_postfix(shown, refresh=False)
        if epoch + 1 < cfg.epochs_run and time.perf_counter() - saved >= save_every_s:
            history.seconds = time.perf_counter() - start
            _save_state(resume, cfg, made_of, parts, generator, train_ds, history, best_state, best)
            saved = time.perf_counter()
    history.seconds = time.perf_counter() - start
    history.images_per_second = cfg.epochs_run * len(train_ds) / max(history.seconds, 1e-9)
    if not cfg.selects_by_validation:
        kept = ema.module if cfg.select == "last_average" else model
        history.best_epoch, history.best_is_ema = cfg.epochs_run - 1, kept is not model
        best_state = {k: v.detach().clone() for k, v in kept.state_dict().items()}

    model.load_state_dict(best_state)
    checkpoint.save(
        path,
        {
            "train_config": asdict(cfg),
            "state_dict": model.state_dict(),
            "history": asdict(history),
            **made_of,
        },
    )
    resume.unlink(missing_ok=True)
    return model.eval(), history


def fit_again(
    validation_run: str, train_ds, offset_faces, name: str, flip_permutation, **fit_kwargs
) -> tuple[nn.Module, History]:
    """Train run ``validation_run`` again, as run ``name``, on ``train_ds``: its faces and the
    validation faces that made its choices, which are more training data once the choices are
    made.  Nothing is left to select an epoch by, so the run takes the same model and settings,
    stops at the epoch ``validation_run`` kept (the same point of the same schedule,
    ``TrainConfig.stop_after``) and keeps the same kind of weights, the network's or their
    moving average.  Its checkpoint gets the validation run's test-time settings and detector
    calibration, with an int8 graph of its own where the validation run chose int8
    (:func:`record_int8`, calibrated on ``offset_faces``) and per-point offsets of its own,
    measured on ``offset_faces`` (``train_ds`` unaugmented;
    :func:`helpers.inference.way_offsets`) on the network the tools run by default.
    ``fit_kwargs`` go to :func:`fit`.

    A validation run trained in two stages (fine-tuned from another run) is refused: this
    repeats one stage."""
    source_path = checkpoint_path(validation_run)
    source = checkpoint.load_checkpoint(source_path)
    if source.get("init_from") is not None:
        raise ValueError(f"{source_path.name} was fine-tuned from another run: fit_again repeats one stage")
    kept = source["history"]
    cfg = TrainConfig(
        **{
            **asdict(TrainConfig()),  # settings added since the run was stored, at their defaults
            **source["train_config"],
            "select": "last_average" if kept["best_is_ema"] else "last",
            "stop_after": kept["best_epoch"] + 1,
        }
    )
    model, history = fit(source["spec"], train_ds, None, name, cfg, **fit_kwargs)
    path = checkpoint_path(name)
    chosen = {k: source[k] for k in ("inference", "calibration") if source.get(k) is not None}
    ckpt = checkpoint.update(path, **chosen)
    if ckpt.get("inference", {}).get("precision") == "int8":  # the offsets of the network run by default
        from .landmarker import Landmarker

        record_int8(name, offset_faces)
        network = Landmarker(path, device="cpu", precision="int8").network
    else:
        network = checkpoint.build_deployed(ckpt, path, next(model.parameters()).device)
    checkpoint.update(path, inference=inference.way_offsets(network, offset_faces, flip_permutation))
    return model, history


def moving_average(model: nn.Module, epochs: float, steps_per_epoch: int):
    """An exponential moving average of ``model``'s weights over about ``epochs`` epochs
    (torch's ``AveragedModel``; BatchNorm's running statistics are averaged with the weights),
    or ``None`` for ``epochs == 0``."""
    if not epochs:
        return None
    decay = 1.0 - 1.0 / max(epochs * steps_per_epoch, 1.0)
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True
    )


def _save_state(path, cfg, made_of, parts, generator, train_ds, history, best_state, best) -> None:
    """Write all that :func:`fit` needs to go on after this epoch, in a checkpoint of its own."""
    checkpoint.save(
        path,
        {
            "train_config": asdict(cfg),
            "state_dict": parts["model"].state_dict(),
            **made_of,
            "resume": {
                "parts": {k: p.state_dict() for k, p in parts.items() if k != "model" and p is not None},
                "best_state": best_state,
                "best": best,
                "history": asdict(history),
                "random": {
                    "python": random.getstate(),
                    "numpy": np.random.get_state(),
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "loader": generator.get_state(),  # the order of the batches
                    "augment": [ds.rng.bit_generator.state for ds in keypoint_datasets(train_ds)],
                },
            },
        },
    )


def _made_alike(path: Path, cfg: TrainConfig, made_of: dict, unreadable: str) -> dict | None:
    """The checkpoint at ``path`` if it was trained with ``cfg`` from what ``made_of`` names,
    else ``None``: the one test for both a finished run to reuse and an unfinished one to go
    on with.  An unreadable file is reported (``unreadable``, and why) and passed over."""
    if not path.exists():
        return None
    try:
        ckpt = checkpoint.load_checkpoint(path)
    except checkpoint.CheckpointError as exc:
        print(f"{unreadable} ({exc})")
        return None
    stored = {**asdict(TrainConfig()), **ckpt["train_config"]}  # settings added since default
    same = stored == asdict(cfg) and all(ckpt.get(k) == v for k, v in made_of.items())
    return ckpt if same else None


def _restore(state: dict, parts: dict, generator, train_ds) -> tuple[History, dict | None, float]:
    """Put the stored weights, optimizer, schedule and random streams back; the history, the
    best weights so far and their validation measure (``cfg.select``)."""
    parts["model"].load_state_dict(state["state_dict"])
    stored = state["resume"]
    for key, part in parts.items():
        if key != "model" and part is not None:
            part.load_state_dict(stored["parts"][key])
    streams = stored["random"]
    random.setstate(streams["python"])
    kind, keys, *rest = streams["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(streams["torch"])
    if streams["cuda"]:
        torch.cuda.set_rng_state_all(streams["cuda"])
    generator.set_state(streams["loader"])
    for ds, rng in zip(keypoint_datasets(train_ds), streams["augment"]):
        ds.rng.bit_generator.state = rng
    return History(**stored["history"]), stored["best_state"], stored["best"]


def fine_tune_runs(name: str, lrs: Sequence[float]) -> dict[str, str]:
    """The candidates of :func:`fit_and_choose_fine_tune`, by label: their run names."""
    return {"none": f"{name}_mixed", **{f"lr {lr:g}": f"{name}_lr{lr:g}" for lr in lrs}}


def fit_and_choose_fine_tune(
    spec: dict,
    train_ds,
    tune_ds,
    val_ds,
    name: str,
    cfg: TrainConfig,
    fine_tune: dict,
    lrs: Sequence[float],
    score: Callable[[nn.Module], dict[str, float]],
    select: str,
    **fit_kwargs,
) -> tuple[nn.Module, History, History | None, dict[str, dict[str, float]], str]:
    """Train run ``name`` in two stages: ``cfg`` on ``train_ds`` (kept as ``{name}_mixed``), then,
    from that stage's best weights, ``cfg`` changed by ``fine_tune`` (fewer epochs) on
    ``tune_ds`` alone at a lower learning rate: a mix of data sets teaches faces in general,
    the second stage adapts the model to the one it is scored on.

    How hard to fine-tune is chosen, not fixed: every rate in ``lrs`` is tried, and so is no
    second stage at all (their runs: :func:`fine_tune_runs`).  ``score`` measures each
    candidate on one or more validation sets (model -> ``{set: NME}``); the lowest
    ``score[select]`` wins, so ``select`` should be the set that stands for the data the model
    is for, markup included.  The other sets are reported, not used: they show what the
    second stage costs elsewhere.  The winner's checkpoint is copied to run ``name``.

    Returns the model, both stages' histories (the second ``None`` when no second stage won),
    every candidate's scores with its second stage's training ``seconds``, and the winner's
    label; ``fit_kwargs`` go to every :func:`fit` call."""
    runs = fine_tune_runs(name, lrs)
    mixed_model, mixed = fit(spec, train_ds, val_ds, runs["none"], cfg, **fit_kwargs)
    candidates = {"none": (mixed_model, None, runs["none"])}
    for lr, (label, run) in zip(lrs, list(runs.items())[1:]):
        model, tuned = fit(
            spec,
            tune_ds,
            val_ds,
            run,
            replace(cfg, **{**fine_tune, "lr": lr}),
            init_from=checkpoint_path(runs["none"]),
            **fit_kwargs,
        )
        candidates[label] = (model, tuned, run)
    table = {
        label: {**score(model), "seconds": tuned.seconds if tuned else 0.0}
        for label, (model, tuned, _) in candidates.items()
    }
    chosen = min(table, key=lambda label: table[label][select])
    model, tuned, run = candidates[chosen]
    shutil.copyfile(checkpoint_path(run), checkpoint_path(name))
    return model, mixed, tuned, table, chosen
