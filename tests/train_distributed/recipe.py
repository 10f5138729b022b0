"""The tiny recipe every distributed test trains: small enough for seconds per run on one core."""

from __future__ import annotations

from sweeper.train.loop import TrainHParams

KIND, SIZE, SEED = "early_fusion", "tiny-1", 3
STEPS = 10
HP = TrainHParams(lr=3e-3, batch_size=4, eval_every=2, eval_batches=1, warmup_frac=0.2)


def hp_dict(hp: TrainHParams = HP) -> dict:
    out = hp.model_dump()
    out["mixture"] = list(hp.mixture)
    return out


def n_tokens(steps: int = STEPS, hp: TrainHParams = HP) -> int:
    return steps * hp.batch_size * 128


def single_process(kind: str, hp=HP):
    """The single-process loop's curve ({step: metrics}) and final TrainResult for the tiny recipe."""
    from models.registry import get_model_spec
    from sweeper.train.loop import train

    curve: dict[int, dict] = {}
    result = train(
        get_model_spec(kind, SIZE),
        hp,
        n_tokens=n_tokens(),
        seed=SEED,
        report=lambda m: curve.__setitem__(m["step"], dict(m)),
    )
    return curve, result
