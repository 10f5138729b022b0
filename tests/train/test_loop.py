import copy
import math

import pytest
import torch

from models.flops import TokenCounts
from models.registry import KINDS, build_model, get_model_spec
from sweeper.data import train_batches, validation_sets
from sweeper.train.loop import VALIDATION_SEED, TrainHParams, lr_at, make_optimizer, n_steps_for, train
from sweeper.train.metrics import evaluate

HP = TrainHParams(lr=8e-3, batch_size=4, eval_every=1000, eval_batches=1, eval_batch_size=8)


def counted_flops(spec, hp, seed, steps):
    """Training FLOPs of the first `steps` batches of the run's stream, batch by batch."""
    stream = train_batches(spec, hp.mixture, hp.batch_size, seed)
    return sum(TokenCounts.of(next(stream)).flops(spec.config, spec.seq_len) for _ in range(steps))


def initial_losses(spec, hp, seed):
    torch.manual_seed(seed)  # the same initialisation train() starts from
    val = validation_sets(
        spec, n_batches=hp.eval_batches, batch_size=hp.eval_batch_size, seed=VALIDATION_SEED
    )
    return evaluate(build_model(spec), val)[0]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_lowers_its_loss_on_every_target(kind):
    spec = get_model_spec(kind, "tiny-1")
    reports = []
    result = train(spec, HP, n_tokens=40 * 4 * spec.seq_len, seed=0, report=reports.append)
    before = initial_losses(spec, HP, 0)
    assert not result.diverged and result.steps == 40
    targets = ("text",) if kind == "dense_text" else ("caption", "interleaved", "text")
    for target in targets:
        assert result.losses[target] < before[target] - 0.5, (target, before[target], result.losses[target])
    assert result.losses["avg"] == pytest.approx(sum(result.losses[t] for t in targets) / len(targets))
    last = reports[-1]
    assert last["step"] == 40 and last["tokens"] == result.n_tokens == 40 * 4 * spec.seq_len
    # C is counted on the 40 batches the run trained on, and near the 45/45/10 estimate
    assert last["flops"] == pytest.approx(result.flops)
    assert result.flops == pytest.approx(counted_flops(spec, HP, 0, 40))
    assert result.flops == pytest.approx(spec.flops_per_token * result.n_tokens, rel=0.05)
    assert {"lr", "train_loss", "val_loss", "val_loss_text"} <= set(last)
    if kind == "moe":
        assert 0.0 <= last["moe_specialization"] <= 1.0 and "aux_loss" in last
        assert "moe_specialization" in result.extra


def test_steps_reports_and_determinism():
    spec = get_model_spec("early_fusion", "tiny-1")
    hp = TrainHParams(lr=3e-3, batch_size=2, eval_every=2, eval_batches=1)
    n_tokens = 5 * 2 * spec.seq_len - 1  # rounds up to 5 steps
    assert n_steps_for(spec, hp, n_tokens) == 5
    reports = []
    a = train(spec, hp, n_tokens=n_tokens, seed=3, report=reports.append)
    b = train(spec, hp, n_tokens=n_tokens, seed=3)
    assert [r["step"] for r in reports] == [2, 4, 5]
    assert a.steps == 5 and a.n_tokens == 5 * 2 * spec.seq_len
    assert a.losses == b.losses and a.train_loss == b.train_loss
    assert {"val_loss_caption", "val_loss_interleaved", "val_loss_text"} <= set(reports[-1])


def test_divergence_stops_without_raising():
    spec = get_model_spec("early_fusion", "tiny-1")
    hp = TrainHParams(lr=10.0, batch_size=2, eval_every=100, eval_batches=1, grad_clip=1e9, warmup_steps=0)
    result = train(spec, hp, n_tokens=30 * 2 * spec.seq_len, seed=0)
    assert result.diverged and result.steps < 30


def test_vision_encoder_gets_its_lr_multiplier_and_decay_is_decoupled():
    spec = get_model_spec("late_fusion", "tiny-1")
    model = build_model(spec)
    opt = make_optimizer(model, TrainHParams(lr=1e-3, batch_size=1, vision_lr_mult=0.1), spec)
    vision = {id(p) for n, p in model.named_parameters() if n.startswith("vision.")}
    for group in opt.param_groups:
        is_vision = {id(p) in vision for p in group["params"]}
        assert len(is_vision) == 1
        assert group["lr"] == pytest.approx(1e-4 if is_vision.pop() else 1e-3)
        if group["weight_decay"]:
            assert group["weight_decay"] * group["lr"] == pytest.approx(1e-4)  # 1e-4 per step at peak LR
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_lr_at_follows_warmup_stable_decay():
    hp = TrainHParams(lr=1.0, batch_size=1, warmup_frac=0.1, cooldown_frac=0.2)
    assert lr_at(0, 100, hp) == pytest.approx(0.1)
    assert lr_at(50, 100, hp) == 1.0
    assert lr_at(99, 100, hp) < 0.15 and not math.isnan(lr_at(99, 100, hp))


def test_a_run_resumed_from_its_checkpoint_ends_where_the_uninterrupted_run_does():
    spec = get_model_spec("early_fusion", "tiny-1")
    hp = TrainHParams(
        lr=8e-3, batch_size=4, eval_every=5, eval_batches=1, eval_batch_size=8, checkpoint_every=10
    )
    n_tokens = 30 * 4 * spec.seq_len
    whole = train(spec, hp, n_tokens=n_tokens, seed=3)
    saved = []
    train(
        spec,
        hp,
        n_tokens=n_tokens,
        seed=3,
        checkpoint=lambda metrics, state: saved.append(copy.deepcopy(state)),
    )
    assert [s["step"] for s in saved] == [10, 20]  # every 10 steps, never at the last step
    reports = []
    resumed = train(spec, hp, n_tokens=n_tokens, seed=3, resume=saved[0], report=reports.append)
    assert reports[0]["step"] == 15  # continued from step 10, not from scratch
    assert resumed.steps == whole.steps == 30
    assert resumed.losses["avg"] == pytest.approx(whole.losses["avg"], rel=1e-5)
    assert resumed.train_loss == pytest.approx(whole.train_loss, rel=1e-5)


def test_a_cooled_evaluation_reports_the_cooled_loss_and_leaves_the_run_untouched():
    spec = get_model_spec("early_fusion", "tiny-1")
    hp = TrainHParams(lr=2e-2, batch_size=4, eval_every=1000, eval_batches=1, eval_batch_size=8)
    n_tokens = 50 * 4 * spec.seq_len
    plain = train(spec, hp, n_tokens=n_tokens, seed=0)
    reports = []
    probed = train(
        spec, hp, n_tokens=n_tokens, seed=0, report=reports.append, cooled_eval_at=frozenset({20, 45})
    )
    assert probed.losses == plain.losses  # weights, optimizer and RNG restored after the probe
    at = {r["step"]: r for r in reports}
    # Step 20 is stable (the cooldown starts at 40): its copy cooled 5 steps (20% of a 25-step run)
    # ends below the peak-LR loss. Step 45 is already in the cooldown: no probe there.
    assert set(at) == {20, 50} and "val_loss_stable" not in at[50]
    assert at[20]["val_loss"] < at[20]["val_loss_stable"]
    probe_flops = counted_flops(spec, hp, 0 + 7919 * 20, 5)  # the probe's own 5 batches
    assert at[20]["flops"] == pytest.approx(counted_flops(spec, hp, 0, 20) + probe_flops)
    assert probed.flops == pytest.approx(plain.flops + probe_flops)
