"""ZeRO 0-3 through TorchTrainer with 2 CPU workers == the single-process loop, step by step."""

from __future__ import annotations

import json
import sys

import pytest

from train_distributed.recipe import HP, KIND, SEED, SIZE, hp_dict, n_tokens, single_process

STAGES = (0, 1, 2, 3)
# ZeRO-3 gathers parameters per module call, so ranks must call the same modules: an image model
# skips its image embedding on a micro-batch without images, so stage 3 trains image-bearing data only.
NO_TEXT = [0.5, 0.5, 0.0]
# The other image kinds at the stages that need the same module calls on every rank: late fusion's
# vision encoder is touched on a batch without images, MoE calls every expert.
OTHER_KINDS = (("moe", 2), ("moe", 3), ("late_fusion", 2), ("late_fusion", 3))
RUNS = tuple((KIND, stage) for stage in STAGES) + OTHER_KINDS


def every_run(config: dict) -> None:
    """One TorchTrainer, one worker group: a fresh DeepSpeed engine per (kind, stage) (start-up paid once)."""
    import ray.train

    from sweeper.train.distributed import run_worker

    ctx = ray.train.get_context()
    curves = {}
    for kind, stage in config["runs"]:
        seen: dict[int, dict] = {}
        hparams = {**config["hparams"], **({"mixture": NO_TEXT} if stage == 3 else {})}
        run_config = {
            **config,
            "point": {**config["point"], "kind": kind},
            "hparams": hparams,
            "distributed": {"workers": 2, "zero_stage": stage, "micro_batch_size": 1},
        }
        run_worker(
            run_config,
            rank=ctx.get_world_rank(),
            world=ctx.get_world_size(),
            report=lambda m, _ckpt, seen=seen: seen.__setitem__(m["step"], m),
            checkpointing=False,
        )
        curves[f"{kind}/{stage}"] = seen
    if ctx.get_world_rank() == 0:
        with open(config["out"], "w") as f:
            json.dump(curves, f)
    ray.train.report({"done": 1})


@pytest.fixture(scope="module")
def stage_curves(ray_local, tmp_path_factory):
    import ray.cloudpickle
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    root = tmp_path_factory.mktemp("zero")
    out = root / "curves.json"
    config = {
        "point": {"kind": KIND, "size": SIZE, "n_tokens": n_tokens()},
        "hparams": hp_dict(),
        "seed": SEED,
        "runs": [list(r) for r in RUNS],
        "out": str(out),
    }
    TorchTrainer(
        every_run,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=2, use_gpu=False, resources_per_worker={"CPU": 1}),
        torch_config=TorchConfig(backend="gloo"),
        run_config=RunConfig(name="zero-stages", storage_path=str(root)),
    ).fit()
    return {k: {int(s): m for s, m in v.items()} for k, v in json.loads(out.read_text()).items()}


def assert_same_trajectory(got: dict, reference, label) -> None:
    curve, result = reference
    # micro_batch 1 x 2 workers x 2 accumulation steps == the recipe's batch of 4 sequences
    assert sorted(got) == sorted(curve) == list(range(HP.eval_every, 11, HP.eval_every))
    for step, ref in curve.items():
        for key in ("val_loss", "val_loss_caption", "val_loss_interleaved", "val_loss_text", "train_loss"):
            assert got[step][key] == pytest.approx(ref[key], abs=2e-3), (label, step, key)
    # Training moved the loss: equality is not two untrained models agreeing.
    assert curve[max(curve)]["val_loss"] < curve[min(curve)]["val_loss"] - 0.05
    final = got[max(got)]
    assert final["status"] == "ok" and final["loss"] == pytest.approx(result.losses["avg"], abs=2e-3)
    assert final["flops"] == pytest.approx(result.flops)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_matches_single_process_trajectory(stage, stage_curves, reference, reference_no_text):
    assert_same_trajectory(
        stage_curves[f"{KIND}/{stage}"], reference_no_text if stage == 3 else reference, stage
    )


@pytest.mark.parametrize("kind, stage", OTHER_KINDS)
def test_every_image_kind_trains_under_zero_2_and_3(kind, stage, stage_curves):
    hp = HP.replace(mixture=tuple(NO_TEXT)) if stage == 3 else HP
    assert_same_trajectory(stage_curves[f"{kind}/{stage}"], single_process(kind, hp), (kind, stage))


def test_zero3_refuses_a_mixture_that_would_desynchronise_ranks(spec):
    from models.registry import build_model
    from sweeper.train.distributed import for_zero

    with pytest.raises(ValueError, match="zero_stage=3"):
        for_zero(build_model(spec), spec, 3, HP.mixture)
