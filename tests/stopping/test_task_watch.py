"""A sweep can watch a downstream task's predicted accuracy, with its own target, and stop on it."""

import math

import numpy as np
import pytest

from sweeper.config.schema import load_config
from sweeper.errors import SweeperInputError
from sweeper.fit.synthetic import draw_losses, isoflop_design
from sweeper.fit.two_step import Sigmoid
from sweeper.sweep.ledger import SweepLedger, stop_rule
from sweeper.sweep.session import task_halfwidths

BUDGETS = np.geomspace(1e17, 1e19, 5)


def task_runs(seed=0):
    """An isoFLOP grid whose task loss follows a Chinchilla law and accuracy a sigmoid of it."""
    c = BUDGETS[2]
    n, d = 0.1 * np.sqrt(c / 6.0), 10.0 * np.sqrt(c / 6.0)
    law = {"E": 0.8, "A": 0.48 * 0.36 / 0.68 * n**0.32, "B": 0.48 * 0.32 / 0.68 * d**0.36}
    law.update(alpha=0.32, beta=0.36)
    frame = draw_losses(isoflop_design(BUDGETS, sizes_per_budget=6), law, noise=0.01, seed=seed)
    acc = Sigmoid(a=0.6, b=0.25, k=-7.0, L0=1.15)(frame["loss"].to_numpy())
    acc = np.random.default_rng(seed).binomial(1000, acc) / 1000
    return frame.assign(**{"task.quiz.loss": frame["loss"], "task.quiz.accuracy": acc})


def test_a_watched_task_gets_the_two_step_half_width_and_its_own_target():
    widths = task_halfwidths(task_runs(), ["task.quiz.accuracy", "task.other.accuracy"], 1e20, 50)
    assert 0 < widths["task.quiz.accuracy"] < 0.2
    assert widths["task.other.accuracy"] == math.inf  # not scored by the runs: never converged
    cfg = load_config("tiny", fit={"watch": ["a", "task.next_word.accuracy"], "target_ci_task": 0.03})
    rule = stop_rule(cfg, adaptive=True, on_convergence=True)
    assert rule.limit("task.next_word.accuracy") == 0.03 and rule.limit("a") == cfg.fit.target_ci


def test_the_ledger_keeps_a_trials_task_scores_for_the_refit():
    ledger = SweepLedger(rule=stop_rule(load_config("tiny"), adaptive=True, on_convergence=True))
    ledger.start("t1", "p1", 1.0)
    result = {"loss": 1.0, "task.quiz.accuracy": 0.5, "task.quiz.loss": 1.2, "status": "ok"}
    assert ledger.finish("t1", {"point_id": "p1", "flops": 1.0}, result)
    assert ledger.frame()["task.quiz.accuracy"].tolist() == [0.5]


def test_only_a_task_the_trials_score_can_be_watched():
    from sweeper.plan.trials import make_plan

    with pytest.raises(SweeperInputError, match="task.quizz.accuracy"):
        make_plan(load_config("tiny", fit={"watch": ["a", "task.quizz.accuracy"]}))
    with pytest.raises(SweeperInputError, match="task.<name>.accuracy"):
        load_config("tiny", fit={"watch": ["a", "task.quiz.loss"]})
    with pytest.raises(SweeperInputError, match="only trained trials"):
        load_config("tiny", trainable="simulated", fit={"watch": ["task.next_word.accuracy"]})
    assert load_config("tiny", tasks={"files": {"quiz": "q.jsonl"}}, fit={"watch": ["task.quiz.accuracy"]})
