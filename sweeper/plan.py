"""Total budget -> isoFLOP slices -> the trials of the initial grid design.

For a slice budget C and a ladder size with training FLOPs f per token, the
trial trains D = C / f tokens, rounded to whole optimizer steps; so C spent is
within 0.5 / min_steps of the slice budget. Sizes whose D would fall outside
the tokens-per-parameter window, or take fewer than `min_steps` steps, are left
out of that slice: they cannot spend the budget meaningfully.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sweeper.config import SweepConfig
from sweeper.errors import SweeperInputError

MIN_SIZES_PER_SLICE = 3  # a parabola in log N needs three points


@dataclass(frozen=True, kw_only=True)
class PlannedTrial:
    point_id: str  # stable key of the (kind, size, budget) point: resume matches on it
    kind: str
    size: str
    n_params: int
    n_params_total: int
    seq_len: int
    n_tokens: int
    steps: int
    flops: float
    budget: float
    est_seconds: float
    batch_size: int = 0  # sequences per step the plan costed (from the recipe); 0: the training section's
    # With cooldown branching every point of a size trains with the recipe of its
    # shortest point (one stable run needs one lr, batch and warmup); 0: its own.
    recipe_tokens: int = 0
    recipe_budget: float = 0.0
    vocab_size: int = 0  # embedding rows the trial builds (ladder's or tokenizer's); 0: the ladder's

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Plan:
    slices: tuple[float, ...]
    trials: tuple[PlannedTrial, ...]
    budget: float
    max_concurrent_trials: int
    cooldown_frac: float | None = None  # set when trials branch off shared stable runs

    @property
    def total_flops(self) -> float:
        """The points' compute C, as independent runs (what the law sees)."""
        return float(sum(t.flops for t in self.trials))

    @property
    def spent_flops(self) -> float:
        """What running the plan costs: with branching each size's stable phase is paid once."""
        return grid_cost(self.trials, self.cooldown_frac)

    @property
    def est_wall_seconds(self) -> float:
        share = self.spent_flops / self.total_flops if self.total_flops > 0 else 1.0  # branching trains less
        return share * sum(t.est_seconds for t in self.trials) / self.max_concurrent_trials

    def by_slice(self) -> dict[float, list[PlannedTrial]]:
        grouped: dict[float, list[PlannedTrial]] = {c: [] for c in self.slices}
        for t in self.trials:
            grouped[t.budget].append(t)
        return grouped


def model_specs(cfg: SweepConfig) -> list:
    """The ladder entries this sweep may use, ascending in N."""
    from models.registry import at_mixture, ladder, with_vocab  # torch import kept out of config-only paths
    from sweeper.data.sources import model_vocab

    # FLOPs per token at the sweep's own mixture and vocabulary: D for a slice's C depends on them
    vocab = model_vocab(cfg.data.model_dump(), cfg.model.vocab_size)
    specs = [at_mixture(with_vocab(s, vocab), cfg.training.mixture) for s in ladder(cfg.model.kind, cfg.model.ladder)]
    where = f"in the {cfg.model.kind}/{cfg.model.ladder} ladder"
    return sorted(select_sizes(specs, cfg.model.sizes, field="model.sizes", where=where), key=lambda s: s.n_params)


def select_sizes(specs: list, names, *, field: str, where: str) -> list:
    """The specs named in `names` (all of them when empty); an unknown name is an input error."""
    if not names:
        return specs
    known = {s.size: s for s in specs}
    missing = [n for n in names if n not in known]
    if missing:
        raise SweeperInputError(field, missing[0], f"not {where}; choose from {sorted(known)}")
    return [known[n] for n in names]


def trial_at(spec, budget: float, cfg: SweepConfig) -> PlannedTrial | None:
    """The trial spending `budget` at this size, or None if the size cannot fill it."""
    batch_size = batch_size_at(spec, budget, cfg)
    steps = round(budget / (spec.flops_per_token * batch_size * spec.seq_len))
    if steps < cfg.budgets.min_steps:
        return None
    trial = _trial(spec, budget, batch_size, steps, cfg)
    tokens_per_param = trial.n_tokens / spec.n_params
    if not cfg.budgets.min_tokens_per_param <= tokens_per_param <= cfg.budgets.max_tokens_per_param:
        return None
    return trial


def _trial(spec, budget: float, batch_size: int, steps: int, cfg: SweepConfig, **recipe_at) -> PlannedTrial:
    """The point of `spec` on slice `budget` trained for `steps` steps of `batch_size` sequences."""
    n_tokens = steps * batch_size * spec.seq_len
    flops = n_tokens * spec.flops_per_token
    return PlannedTrial(
        point_id=f"{spec.kind}/{spec.size}/C={budget:.4g}",
        kind=spec.kind,
        size=spec.size,
        n_params=int(spec.n_params),
        n_params_total=int(spec.n_params_total),
        seq_len=int(spec.seq_len),
        n_tokens=int(n_tokens),
        steps=int(steps),
        flops=float(flops),
        budget=float(budget),
        est_seconds=float(flops / cfg.throughput_flops),
        batch_size=int(batch_size),
        vocab_size=int(spec.config.vocab_size),
        **recipe_at,
    )


def share_size_recipes(trials, specs, cfg: SweepConfig) -> list[PlannedTrial]:
    """Cooldown branching: each size's points take the batch and recipe of its shortest point, so they
    can share one stable run; D is re-derived so each point still spends its slice."""
    by_size = {s.size: s for s in specs}
    shortest: dict[tuple[str, str], PlannedTrial] = {}
    for t in trials:
        key = (t.kind, t.size)
        if key not in shortest or t.n_tokens < shortest[key].n_tokens:
            shortest[key] = t
    out = []
    for t in trials:
        ref = shortest[(t.kind, t.size)]
        spec = by_size[t.size]
        steps = max(1, round(t.budget / (spec.flops_per_token * ref.batch_size * spec.seq_len)))
        out.append(_trial(spec, t.budget, ref.batch_size, steps, cfg, recipe_tokens=ref.n_tokens, recipe_budget=ref.budget))
    return out


def batch_size_at(spec, budget: float, cfg: SweepConfig) -> int:
    """Sequences per step at this size and slice: the recipe's (Table 6, fitted) or the fixed one."""
    if cfg.training.recipe == "fixed":
        return cfg.training.batch_size
    from sweeper.tuning.recipe import recipe_batch_size

    return recipe_batch_size(cfg, spec, budget)


def slice_trials(specs, budget: float, cfg: SweepConfig) -> list[PlannedTrial]:
    return [t for t in (trial_at(s, budget, cfg) for s in specs) if t is not None]


def geometric_slices(top: float, n: int, ratio: float) -> tuple[float, ...]:
    return tuple(float(top * ratio ** -(n - 1 - i)) for i in range(n))


def _grid_for(slices, specs, cfg) -> list[list[PlannedTrial]] | None:
    per_slice = [slice_trials(specs, c, cfg) for c in slices]
    if any(len(trials) < MIN_SIZES_PER_SLICE for trials in per_slice):
        return None
    return per_slice


def grid_cost(trials, cooldown_frac: float | None) -> float:
    from sweeper.branch_costs import branched_flops

    trials = list(trials)
    return branched_flops(trials, cooldown_frac) if cooldown_frac is not None else float(sum(t.flops for t in trials))


def branchable(trials, specs, cfg: SweepConfig) -> list[PlannedTrial]:
    """The trials as they will train: with branching, on their size's shared recipe."""
    return share_size_recipes(trials, specs, cfg) if plan_cooldown(cfg) is not None else list(trials)


def plan_cooldown(cfg: SweepConfig) -> float | None:
    """The cooldown fraction when trials branch (trained sweeps with training.branching); else None."""
    return cfg.training.cooldown_frac if cfg.training.branching and cfg.trainable == "torch" else None


def choose_slices(specs, cfg: SweepConfig) -> tuple[float, ...]:
    """The largest geometric slices whose full grid fits in the total budget."""
    n, ratio = cfg.budgets.n_slices, cfg.budgets.ratio
    cheapest = min(s.flops_per_token * batch_size_at(s, s.flops_per_token * s.seq_len * cfg.budgets.min_steps, cfg)
                   * s.seq_len for s in specs)
    low = cheapest * cfg.budgets.min_steps  # no slice below this can hold any trial
    best = None
    for top in np.geomspace(low * ratio ** (n - 1), max(cfg.budget, low * 2), 600):
        slices = geometric_slices(float(top), n, ratio)
        grid = _grid_for(slices, specs, cfg)
        if grid is not None and grid_cost(branchable([t for ts in grid for t in ts], specs, cfg), plan_cooldown(cfg)) <= cfg.budget:
            best = slices
    if best is None:
        raise SweeperInputError(
            "budget",
            cfg.budget,
            f"too small for {n} isoFLOP slices of >= {MIN_SIZES_PER_SLICE} sizes from the "
            f"{cfg.model.kind}/{cfg.model.ladder} ladder; raise --budget, lower budgets.n_slices, "
            "or widen budgets.min/max_tokens_per_param",
        )
    return best


def check_data(cfg: SweepConfig, specs) -> None:
    """Open the configured corpus once before anything runs: a missing path, an empty or truncated shard, or
    a token id the models cannot embed fails here (exit 2, naming the file), not in every trial."""
    if cfg.data.source == "generated" or cfg.trainable == "simulated":
        return
    from sweeper.data.sources import for_trials

    data, vocab = for_trials(cfg.data.model_dump()), min(s.config.vocab_size for s in specs)
    for section in data["targets"].values() if cfg.data.source == "mixture" else [data]:
        _check_source(section, specs, vocab)


def _check_source(data: dict, specs, vocab: int) -> None:
    from sweeper.data.sources import (DOCUMENT_SOURCES, documents, packer_tokenizer, training_shards,
                                      validation_shards)

    fields = ("data.path", "data.val_path") if data.get("val_path") else ("data.path",)
    if data["source"] in DOCUMENT_SOURCES:
        packer_tokenizer(data)  # a missing or unreadable tokenizer fails here
        for spec in {s.config.image: s for s in specs}.values():
            for field in fields:
                docs = documents(spec, data, field)
                if data.get("bad_images") == "error":
                    docs.check_images()
    elif data["source"] != "generated":
        for spec in {s.seq_len: s for s in specs}.values():  # hf_text: tokenizes the corpus once, here
            training_shards(spec, data, vocab)
            if data.get("val_path"):
                validation_shards(spec, data, vocab)


def make_plan(cfg: SweepConfig) -> Plan:
    """The initial grid design: every slice × every size that can fill it."""
    specs = model_specs(cfg)
    check_data(cfg, specs)
    slices = tuple(sorted(cfg.budgets.slices)) or choose_slices(specs, cfg)
    trials: list[PlannedTrial] = []
    for c in slices:
        in_slice = slice_trials(specs, c, cfg)
        if len(in_slice) < MIN_SIZES_PER_SLICE:
            raise SweeperInputError(
                "budgets.slices",
                c,
                f"only {len(in_slice)} ladder sizes can fill this slice (need {MIN_SIZES_PER_SLICE}); "
                "move the slice, add sizes, or widen budgets.min/max_tokens_per_param",
            )
        trials.extend(in_slice)
    plan = Plan(slices=slices, trials=tuple(branchable(trials, specs, cfg)), budget=cfg.budget, max_concurrent_trials=cfg.ray.max_concurrent_trials,
                cooldown_frac=plan_cooldown(cfg))
    if plan.spent_flops > cfg.budget * (1 + 1e-9):
        raise SweeperInputError("budget", cfg.budget, f"the grid needs {plan.spent_flops:.3g} FLOPs; raise --budget or drop slices")
    return plan


def format_plan(plan: Plan) -> str:
    """The table `sweeper plan` prints: nothing has been spent yet."""
    lines = [f"{'point':<34} {'N':>10} {'D':>12} {'C':>10} {'D/N':>7} {'est s':>8}"]
    for t in plan.trials:
        lines.append(
            f"{t.point_id:<34} {t.n_params:>10,d} {t.n_tokens:>12,d} {t.flops:>10.3g} "
            f"{t.n_tokens / t.n_params:>7.1f} {t.est_seconds:>8.1f}"
        )
    lines.append(
        f"{len(plan.trials)} trials on {len(plan.slices)} slices "
        f"({', '.join(f'{c:.3g}' for c in plan.slices)}); "
        f"{plan.spent_flops:.3g} of {plan.budget:.3g} FLOPs"
        f"{f' with cooldown branching ({plan.total_flops:.3g} as independent runs)' if plan.cooldown_frac is not None else ''}; "
        f"~{_human(plan.est_wall_seconds)} at {plan.max_concurrent_trials} concurrent trials (estimate)"
    )
    return "\n".join(lines)


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 172800 else f"{seconds / 86400:.1f} days"
