"""The training loop, its checkpoints, fine-tuning and the choice of its second stage."""

from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from helpers import checkpoint, geometry, models, train
from helpers.augment import NONE, Augment
from helpers.datasets import Item, KeypointDataset
from tests.test_geometry import blob


def blob_dataset(n=32, seed=0, augment=NONE):
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        c = rng.uniform(8, 24, 2)
        items.append(
            Item(blob((32, 32), c, 2.0).astype(np.uint8), c[None].astype(np.float32), geometry.IDENTITY)
        )
    return KeypointDataset(items, (32, 32), augment)


def test_fit_learns_and_reuses_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 8, "dilations": (2,)}
    cfg = train.TrainConfig(epochs=15, lr=5e-3, batch_size=8)
    model, hist = train.fit(
        spec, blob_dataset(64), blob_dataset(8, seed=1), "blob", cfg, progress=False, device="cpu"
    )
    assert hist.val_loss[-1] < hist.val_loss[0] * 0.5
    assert train.checkpoint_path("blob").exists() and tmp_path in train.checkpoint_path("blob").parents
    again, hist2 = train.fit(
        spec, blob_dataset(64), blob_dataset(8, seed=1), "blob", cfg, progress=False, device="cpu"
    )
    assert hist2.seconds == hist.seconds  # loaded, not retrained
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    _, hist3 = train.fit(
        spec,
        blob_dataset(64),
        blob_dataset(8, seed=1),
        "blob",
        train.TrainConfig(epochs=2, lr=1e-2, batch_size=8),
        progress=False,
        device="cpu",
    )
    assert len(hist3.train_loss) == 2  # other settings retrain
    # the same settings on crops of another size (the preprocessing stored as extra) retrain too
    short = train.TrainConfig(epochs=2, lr=1e-2, batch_size=8)
    run = dict(progress=False, device="cpu")
    _, small = train.fit(
        spec, blob_dataset(64), blob_dataset(8, seed=1), "crops", short, extra={"size": 32}, **run
    )
    _, same = train.fit(
        spec, blob_dataset(64), blob_dataset(8, seed=1), "crops", short, extra={"size": 32}, **run
    )
    _, other = train.fit(
        spec, blob_dataset(64), blob_dataset(8, seed=1), "crops", short, extra={"size": 48}, **run
    )
    assert same.seconds == small.seconds and other.seconds != small.seconds
    # and so do they on differently augmented data, even inside a Subset
    shifted = torch.utils.data.Subset(
        blob_dataset(64, augment=Augment(max_rotation=0, max_shift=2, flip_p=0)), range(64)
    )
    _, moved = train.fit(spec, shifted, blob_dataset(8, seed=1), "crops", short, extra={"size": 48}, **run)
    _, moved_again = train.fit(
        spec, shifted, blob_dataset(8, seed=1), "crops", short, extra={"size": 48}, **run
    )
    assert moved.seconds != other.seconds and moved_again.seconds == moved.seconds
    # as many faces, but other ones (a changed split), train again too
    _, others = train.fit(
        spec, blob_dataset(64, seed=2), blob_dataset(8, seed=1), "crops", short, extra={"size": 48}, **run
    )
    assert others.seconds != moved.seconds
    loaded, ckpt = checkpoint.load_model(train.checkpoint_path("blob"), device="cpu")
    assert ckpt["spec"] == spec and not loaded.training


@pytest.mark.parametrize("ema_epochs", [0.0, 1.0])
def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch, ema_epochs):
    """Stopped during its fourth of six epochs and started again, a run ends with the history
    and weights of one that never stopped (augmentations, batch order and the moving average
    of the weights included), and leaves no resume file; a resume file of other settings is
    not taken up."""
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 8, "dilations": (2,)}
    cfg = train.TrainConfig(epochs=6, lr=5e-3, batch_size=8, ema_epochs=ema_epochs)
    passes = 3 if ema_epochs else 2  # a training pass and one validation pass per set of weights
    moving = Augment(max_rotation=10, max_shift=2, flip_p=0)  # so the random streams matter
    run = dict(progress=False, device="cpu", save_every_s=0)

    def fit(name, settings=cfg):
        return train.fit(
            spec, blob_dataset(32, augment=moving), blob_dataset(8, seed=1), name, settings, **run
        )

    whole, whole_history = fit("whole")
    real, calls = train.run_epoch, []

    def stop_in_the_fourth_epoch(*args):
        calls.append(len(args))
        if len(calls) == 3 * passes + 1:  # the fourth epoch's training pass
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(train, "run_epoch", stop_in_the_fourth_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit("split")
    assert checkpoint.resume_path("split").exists() and not train.checkpoint_path("split").exists()
    stored = checkpoint.load_checkpoint(checkpoint.resume_path("split"))["resume"]["history"]
    assert stored["train_loss"] == whole_history.train_loss[:3]
    monkeypatch.setattr(train, "run_epoch", real)

    resumed, history = fit("split")
    assert history.train_loss == whole_history.train_loss and history.val_loss == whole_history.val_loss
    assert history.ema_val_loss == whole_history.ema_val_loss and len(history.ema_val_loss) == (
        6 if ema_epochs else 0
    )
    assert (history.best_epoch, history.best_is_ema) == (whole_history.best_epoch, whole_history.best_is_ema)
    assert history.seconds > 0
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert not checkpoint.resume_path("split").exists()

    monkeypatch.setattr(train, "run_epoch", stop_in_the_fourth_epoch)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        fit("other")
    monkeypatch.setattr(train, "run_epoch", real)
    _, fresh = fit("other", replace(cfg, lr=1e-2))
    assert fresh.train_loss[:3] != stored["train_loss"]  # trained from the start at its own rate


def test_fine_tuning_starts_from_its_source_and_follows_it(tmp_path, monkeypatch):
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 8, "dilations": (2,)}
    data, val = blob_dataset(64), blob_dataset(8, seed=1)
    train.fit(
        spec,
        data,
        val,
        "source",
        train.TrainConfig(epochs=15, lr=5e-3, batch_size=8),
        progress=False,
        device="cpu",
    )
    tune = train.TrainConfig(epochs=1, lr=1e-4, batch_size=8)
    _, scratch = train.fit(spec, data, val, "scratch", tune, progress=False, device="cpu")
    _, tuned = train.fit(
        spec,
        data,
        val,
        "tuned",
        tune,
        progress=False,
        device="cpu",
        init_from=train.checkpoint_path("source"),
    )
    assert tuned.val_loss[0] < 0.5 * scratch.val_loss[0]  # it kept what the source learned
    assert (
        checkpoint.load_checkpoint(train.checkpoint_path("tuned"))["init_from"]["checkpoint"] == "source.pt"
    )
    _, again = train.fit(
        spec,
        data,
        val,
        "tuned",
        tune,
        progress=False,
        device="cpu",
        init_from=train.checkpoint_path("source"),
    )
    assert again.seconds == tuned.seconds  # reused
    train.fit(
        spec,
        data,
        val,
        "source",
        train.TrainConfig(epochs=3, lr=5e-3, batch_size=8),
        progress=False,
        device="cpu",
    )
    _, redone = train.fit(
        spec,
        data,
        val,
        "tuned",
        tune,
        progress=False,
        device="cpu",
        init_from=train.checkpoint_path("source"),
    )
    assert redone.seconds != tuned.seconds  # a retrained source retrains its fine-tuned run


def test_a_retrained_backbone_retrains_the_run_built_on_it(tmp_path, monkeypatch):
    """Part 4's heatmap runs name Part 3's checkpoint as their backbone by file name; retraining
    Part 3 keeps the name, and must still retrain them."""
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    data, val = blob_dataset(8), blob_dataset(8, seed=1)
    regression = {"kind": "resnet18", "n_points": 1}
    cfg = train.TrainConfig(epochs=1, lr=1e-3, batch_size=8)
    train.fit(regression, data, val, "part3", cfg, progress=False, device="cpu")
    spec = {"kind": "heatmap_resnet18", "n_points": 1, "backbone_from": "part3.pt", "logits": True}
    heat = train.TrainConfig(epochs=1, lr=1e-3, batch_size=8, loss="heatmap_zero_one")
    _, first = train.fit(spec, data, val, "part4", heat, progress=False, device="cpu")
    _, again = train.fit(spec, data, val, "part4", heat, progress=False, device="cpu")
    assert again.seconds == first.seconds  # same backbone run: reused
    train.fit(regression, data, val, "part3", cfg, retrain=True, progress=False, device="cpu")
    _, redone = train.fit(spec, data, val, "part4", heat, progress=False, device="cpu")
    assert redone.seconds != first.seconds


def test_fit_and_choose_fine_tune_keeps_the_lowest_selected_score(tmp_path, monkeypatch):
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 4, "dilations": (2,)}
    cfg = train.TrainConfig(epochs=1, lr=5e-3, batch_size=8)
    data = (blob_dataset(24), blob_dataset(16, seed=2), blob_dataset(8, seed=1))

    def choose(marks):  # each candidate's scores, in order: none, lr 1e-3, lr 1e-4
        scores = iter(marks)
        return train.fit_and_choose_fine_tune(
            spec,
            *data,
            "run",
            cfg,
            {"epochs": 1},
            (1e-3, 1e-4),
            lambda m: next(scores),
            "a",
            progress=False,
            device="cpu",
        )

    model, mixed, tuned, table, chosen = choose(
        [{"a": 3.0, "b": 0.0}, {"a": 1.0, "b": 4.0}, {"a": 2.0, "b": 2.0}]
    )
    assert list(table) == ["none", "lr 0.001", "lr 0.0001"] and table["lr 0.001"]["b"] == 4.0
    assert chosen == "lr 0.001"
    kept = checkpoint.load_checkpoint(train.checkpoint_path("run"))
    assert kept["train_config"]["lr"] == 1e-3 and kept["init_from"]["checkpoint"] == "run_mixed.pt"
    assert tuned is not None and len(mixed.train_loss) == 1
    first = checkpoint.load_checkpoint(train.checkpoint_path("run_mixed"))
    assert first["train_config"]["n_train"] == 24 and first["train_config"]["lr"] == 5e-3
    assert kept["train_config"]["n_train"] == 16 and kept["train_config"]["epochs"] == 1
    # no second stage wins: the first stage's weights are kept
    _, _, tuned, _, chosen = choose([{"a": 1.0}, {"a": 2.0}, {"a": 2.0}])
    assert tuned is None and chosen == "none"
    assert checkpoint.load_checkpoint(train.checkpoint_path("run"))["train_config"]["lr"] == 5e-3


def test_wing_loss_is_log_then_linear():
    zero = torch.zeros(1)
    small, large = train.wing_loss(torch.tensor([0.01]), zero), train.wing_loss(torch.tensor([0.5]), zero)
    assert 0 < small < 0.05 and large == pytest.approx(0.5 - (0.05 - 0.05 * np.log1p(5.0)), rel=1e-5)


def test_record_inference_updates_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.delenv("FKP_SMOKE", raising=False)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 4, "dilations": (2,)}
    checkpoint.save(
        tmp_path / "run.pt",
        {"spec": spec, "state_dict": models.build(spec).state_dict(), "inference": {"flip": True}},
    )
    train.record_inference("run", decode="argmax", beta=1.0)
    assert checkpoint.load_checkpoint(tmp_path / "run.pt")["inference"] == {
        "flip": True,
        "decode": "argmax",
        "beta": 1.0,
    }


def test_float16_with_a_gradient_scaler_trains(monkeypatch):
    """The path a GPU without bfloat16 takes (float16 autocast, scaled loss), run on the CPU."""
    torch.manual_seed(0)
    model = models.build({"kind": "soft_argmax", "n_points": 1, "width": 8, "dilations": (2,)})
    loader = torch.utils.data.DataLoader(blob_dataset(32), 8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    scaler = torch.amp.GradScaler("cpu")
    loss_fn = train.criterion(train.TrainConfig(loss="l1"))
    losses = [
        train.run_epoch(model, loader, loss_fn, torch.device("cpu"), optimizer, None, torch.float16, scaler)
        for _ in range(8)
    ]
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0]
    assert scaler.get_scale() > 1  # the loss was scaled, not passed through


def test_mixed_precision_is_bfloat16_unless_the_gpu_lacks_it(monkeypatch):
    assert train.mixed_precision("cpu") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert train.mixed_precision("cuda") == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert train.mixed_precision("cuda") == torch.bfloat16


def test_select_nme_keeps_the_epoch_with_the_lowest_validation_nme(tmp_path, monkeypatch):
    """A heatmap model's validation loss and NME can disagree: with ``select="nme"`` the run keeps
    the weights of the epoch whose NME is lowest, whatever the loss did (here the NME of each
    epoch is scripted, and each epoch's weights are recorded as it is scored)."""
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 4, "dilations": (2,)}
    scripted, weights = iter([5.0, 2.0, 3.0, 4.0]), []

    def nme_percent(model, dataset):
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return next(scripted)

    monkeypatch.setattr(train.inference, "nme_percent", nme_percent)
    data, val = blob_dataset(24), blob_dataset(8, seed=1)
    cfg, run = (
        train.TrainConfig(epochs=4, lr=5e-3, batch_size=8, select="nme"),
        dict(progress=False, device="cpu"),
    )
    model, hist = train.fit(spec, data, val, "by_nme", cfg, **run)
    assert hist.val_nme == [5.0, 2.0, 3.0, 4.0] and hist.best_epoch == 1
    assert len(hist.val_loss) == 4  # the loss is still recorded, for the curves
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[1][name])
    stored = checkpoint.load_checkpoint(train.checkpoint_path("by_nme"))
    assert stored["train_config"]["select"] == "nme" and stored["history"]["best_epoch"] == 1
    # the same settings selected by loss are another run: trained, not loaded from this one
    _, by_loss = train.fit(spec, data, val, "by_nme", replace(cfg, select="loss"), **run)
    assert by_loss.val_nme == [] and by_loss.seconds != hist.seconds
    with pytest.raises(ValueError, match="select='accuracy'"):
        train.fit(spec, data, val, "bad", replace(cfg, select="accuracy"), **run)


def test_the_moving_average_is_kept_where_it_validates_better(tmp_path, monkeypatch):
    """With ``ema_epochs`` the run validates its network and the moving average of its weights
    each epoch (scripted NMEs here, network first) and keeps whichever scored lowest, flagged
    in its history; a run without the average is another run."""
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 4, "dilations": (2,)}
    scripted, weights = iter([5.0, 6.0, 3.0, 2.5, 2.8, 2.9]), []

    def nme_percent(model, dataset):
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return next(scripted)

    monkeypatch.setattr(train.inference, "nme_percent", nme_percent)
    data, val, run = blob_dataset(24), blob_dataset(8, seed=1), dict(progress=False, device="cpu")
    cfg = train.TrainConfig(epochs=3, lr=5e-3, batch_size=8, select="nme", ema_epochs=1.0)
    model, hist = train.fit(spec, data, val, "ema", cfg, **run)
    assert hist.val_nme == [5.0, 3.0, 2.8] and hist.ema_val_nme == [6.0, 2.5, 2.9]
    assert (hist.best_epoch, hist.best_is_ema) == (1, True)
    assert len(hist.ema_val_loss) == 3
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[3][name])
    assert not all(torch.equal(weights[2][k], weights[3][k]) for k in weights[2])  # not the network's
    stored = checkpoint.load_checkpoint(train.checkpoint_path("ema"))
    assert stored["train_config"]["ema_epochs"] == 1.0 and stored["history"]["best_is_ema"]
    scripted = iter([4.0, 3.0, 3.5])
    _, plain = train.fit(spec, data, val, "ema", replace(cfg, ema_epochs=0.0), **run)
    assert plain.ema_val_nme == [] and not plain.best_is_ema and plain.best_epoch == 1
    with pytest.raises(ValueError, match="ema_epochs=-1"):
        train.TrainConfig(ema_epochs=-1)


def test_the_moving_average_weighs_the_last_epochs_steps():
    """``ema_epochs`` epochs of ``steps_per_epoch`` steps: each update moves the average by
    1 / (epochs * steps) of the way to the network's weights, after starting as a copy."""
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = train.moving_average(net, 0.5, 8)  # 4 steps: each update moves it a quarter of the way
    ema.update_parameters(net)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update_parameters(net)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.25))
    ema.update_parameters(net)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.4375))
    assert train.moving_average(net, 0.0, 8) is None


def test_a_diverged_run_stops_with_a_sentence_naming_the_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 8, "dilations": (2,)}
    cfg = train.TrainConfig(epochs=3, lr=1e-2, batch_size=8)
    monkeypatch.setattr(train, "run_epoch", lambda model, loader, *args: float("nan"))
    with pytest.raises(
        FloatingPointError, match="blob: the training loss became nan in epoch 1; the run diverged"
    ):
        train.fit(spec, blob_dataset(16), blob_dataset(8, seed=1), "blob", cfg, progress=False, device="cpu")
    assert not train.checkpoint_path("blob").exists()


def test_select_last_keeps_the_last_epoch_and_needs_no_validation_faces(tmp_path, monkeypatch):
    """A final model trained again on every face keeps its last epoch's weights: the network's
    (``"last"``) or its moving average's (``"last_average"``), with nothing validated on the way,
    and can stop partway through its schedule (``stop_after``); the two selections that read
    validation scores refuse to run without validation faces."""
    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 4, "dilations": (2,)}
    run = dict(progress=False, device="cpu")
    ends = []  # the network's weights after each epoch

    def run_epoch(model, loader, loss_fn, device, optimizer=None, *args):
        assert optimizer is not None, "nothing is validated"
        loss = real_run_epoch(model, loader, loss_fn, device, optimizer, *args)
        ends.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return loss

    real_run_epoch = train.run_epoch
    monkeypatch.setattr(train, "run_epoch", run_epoch)
    cfg = train.TrainConfig(epochs=3, lr=5e-3, batch_size=8, select="last", ema_epochs=1.0)
    model, hist = train.fit(spec, blob_dataset(24), None, "last", cfg, **run)
    assert (hist.best_epoch, hist.best_is_ema) == (2, False)
    assert hist.val_loss == [] and len(hist.train_loss) == 3
    for name, value in model.state_dict().items():
        assert torch.equal(value, ends[-1][name])

    # one step an epoch; an average over a million epochs starts as a copy of the weights after
    # the first step and barely moves after that: it keeps the first epoch's weights
    ends.clear()
    slow = replace(cfg, epochs=2, select="last_average", ema_epochs=1e6)
    average, hist = train.fit(spec, blob_dataset(8), None, "average", slow, **run)
    assert (hist.best_epoch, hist.best_is_ema) == (1, True)
    floats = [k for k, v in average.state_dict().items() if v.is_floating_point()]
    assert all(torch.allclose(average.state_dict()[k], ends[0][k], atol=1e-5) for k in floats)
    assert not all(torch.allclose(average.state_dict()[k], ends[1][k], atol=1e-5) for k in floats)
    stored = checkpoint.load_checkpoint(train.checkpoint_path("average"))
    assert stored["train_config"]["select"] == "last_average" and stored["history"]["best_is_ema"]

    # stopped after 2 of 4 epochs, a run is the first half of the 4-epoch run: the same schedule
    ends.clear()
    train.fit(spec, blob_dataset(24), None, "whole", replace(cfg, epochs=4), **run)
    halfway = ends[1]
    stopped, hist = train.fit(
        spec, blob_dataset(24), None, "half", replace(cfg, epochs=4, stop_after=2), **run
    )
    assert len(hist.train_loss) == 2 and hist.best_epoch == 1
    for name, value in stopped.state_dict().items():
        assert torch.equal(value, halfway[name])
    with pytest.raises(ValueError, match="stop_after=5"):
        replace(cfg, epochs=4, stop_after=5)
    with pytest.raises(ValueError, match="use select='last'"):
        replace(cfg, select="nme", stop_after=2)

    with pytest.raises(ValueError, match="select='nme' needs validation faces"):
        train.fit(spec, blob_dataset(24), None, "nme", replace(cfg, select="nme"), **run)
    with pytest.raises(ValueError, match="set ema_epochs too"):
        train.TrainConfig(select="last_average")


def test_fit_again_repeats_the_validation_run_up_to_its_kept_epoch_on_more_faces(tmp_path, monkeypatch):
    """The final model trains on more faces with its validation run's model and settings, stops
    at the epoch that run kept and keeps the same kind of weights; it takes that run's test-time
    settings and calibration and measures its own offsets.  A run fine-tuned from another is
    refused, since this repeats one stage."""
    from helpers import inference

    monkeypatch.setattr(train.config, "CHECKPOINT_DIR", tmp_path)
    spec = {"kind": "soft_argmax", "n_points": 1, "width": 4, "dilations": (2,)}
    scripted = iter([5.0, 6.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0])  # each epoch: network, then average
    real_nme = train.inference.nme_percent
    monkeypatch.setattr(train.inference, "nme_percent", lambda model, dataset: next(scripted))
    run = dict(progress=False, device="cpu")
    cfg = train.TrainConfig(epochs=4, lr=5e-3, batch_size=8, select="nme", ema_epochs=1.0)
    _, chosen = train.fit(spec, blob_dataset(16), blob_dataset(8, seed=1), "val_run", cfg, **run)
    monkeypatch.setattr(train.inference, "nme_percent", real_nme)
    assert (chosen.best_epoch, chosen.best_is_ema) == (1, False)
    calibration = {"haar": {"dx": 0.1, "dy": 0.0, "scale": 1.2}}
    train.record_inference("val_run", flip=True, passes=3, offset=[[0.5, 0.5]], flip_offset=[[0.4, 0.5]])
    checkpoint.update(train.checkpoint_path("val_run"), calibration=calibration)

    every, plain, perm = blob_dataset(24), blob_dataset(24).unaugmented(), np.array([0])
    model, hist = train.fit_again("val_run", every, plain, "final", perm, **run)
    assert len(hist.train_loss) == 2 and hist.val_loss == [] and not hist.best_is_ema
    stored = checkpoint.load_checkpoint(train.checkpoint_path("final"))
    assert stored["train_config"] == {**asdict(replace(cfg, select="last", stop_after=2)), "n_train": 24}
    assert stored["calibration"] == calibration
    settings = stored["inference"]
    assert (settings["flip"], settings["passes"]) == (True, 3)
    own = inference.way_offsets(model, plain, perm)
    for key in ("offset", "flip_offset"):  # to rounding: the stored model runs in another memory layout
        np.testing.assert_allclose(settings[key], own[key], atol=1e-6)
    assert settings["offset"] != [[0.5, 0.5]]

    train.fit(
        spec,
        blob_dataset(16),
        blob_dataset(8, seed=1),
        "tuned",
        replace(cfg, epochs=1, select="loss"),
        init_from=train.checkpoint_path("val_run"),
        **run,
    )
    with pytest.raises(ValueError, match="tuned.pt was fine-tuned from another run"):
        train.fit_again("tuned", every, plain, "final2", perm, **run)
