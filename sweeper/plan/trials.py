"""Total budget -> isoFLOP slices -> the trials of the initial grid design.

For a slice budget C and a ladder size with training FLOPs f per token, the
trial trains D = C / f tokens, rounded to whole optimizer steps; so C spent is
within 0.5 / min_steps of the slice budget. Sizes whose D would fall outside
the tokens-per-parameter window, or take fewer than `min_steps` steps, are left
out of that slice: they cannot spend the budget meaningfully.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sweeper.config.schema import SweepConfig
from sweeper.errors import SweeperInputError

MIN_SIZES_PER_SLICE = 3  # a parabola in log N needs three points
# Wall time a trained sweep spends besides its trials' FLOPs and batches, measured on 2 idle CPU cores
# (benchmarks/data_sources.py): per trial, starting it on a reused Ray actor, building its model and
# validation batches, its MLflow run; per sweep, the parent run, the final fit and the report.
TRIAL_OVERHEAD_S = 2.0
TASK_OVERHEAD_S, TASK_SPEEDUP = 1.5, 10.0  # see task_seconds
SWEEP_OVERHEAD_S = 10.0


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
    epochs: float = 0.0  # passes over its most repeated source (0: generated data, which never repeats)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Plan:
    slices: tuple[float, ...]
    trials: tuple[PlannedTrial, ...]
    budget: float
    max_concurrent_trials: int
    cooldown_frac: float | None = None  # set when trials branch off shared stable runs
    sources: tuple = ()  # sweeper.data.usage.SourceSize of each file source (none for generated data)
    overhead_s: float = 0.0  # the sweep's own wall time besides its trials' (SWEEP_OVERHEAD_S when trained)

    @property
    def repetition_warning(self) -> str | None:
        """One sentence when any trial sees some of its data more than once, saying how much."""
        return repetition_warning(self.trials, self.sources)

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
        return self.overhead_s + share * sum(t.est_seconds for t in self.trials) / self.max_concurrent_trials

    def by_slice(self) -> dict[float, list[PlannedTrial]]:
        grouped: dict[float, list[PlannedTrial]] = {c: [] for c in self.slices}
        for t in self.trials:
            grouped[t.budget].append(t)
        return grouped


def model_specs(cfg: SweepConfig) -> list:
    """The ladder entries this sweep may use, ascending in N, costed per token at what their batches hold."""
    from models.registry import at_mixture, ladder, with_vocab  # torch import kept out of config-only paths
    from sweeper.data.sources import model_vocab

    # FLOPs per token at the sweep's own mixture and vocabulary: D for a slice's C depends on them
    vocab = model_vocab(cfg.data.model_dump(), cfg.model.vocab_size)
    specs = [
        at_mixture(with_vocab(s, vocab), cfg.training.mixture)
        for s in ladder(cfg.model.kind, cfg.model.ladder)
    ]
    where = f"in the {cfg.model.kind}/{cfg.model.ladder} ladder"
    specs = sorted(
        select_sizes(specs, cfg.model.sizes, field="model.sizes", where=where), key=lambda s: s.n_params
    )
    return [costed_on_data(s, cfg) for s in specs]


def costed_on_data(spec, cfg: SweepConfig):
    """`spec` with its training FLOPs per token at the share of image and scored positions that the
    configured source's batches really hold (measured: sweeper.data.usage), so a trial spends its slice."""
    use = data_use(spec, cfg)
    if use is None:
        return spec
    from dataclasses import replace

    from models.flops import training_flops_per_token

    image, scored = use.composition
    return replace(
        spec,
        flops_per_token=training_flops_per_token(
            spec.config, spec.seq_len, {"image": image, "scored": scored}
        ),
    )


_DATA_USE: dict = {}  # (data section, mixture, seq_len, image geometry) -> DataUse, once per process


def data_use(spec, cfg: SweepConfig):
    """What the configured corpus holds for `spec` (sweeper.data.usage.DataUse), checked first
    (check_data); None for generated data or the simulated trainable, which read no corpus."""
    if cfg.data.source == "generated" or cfg.trainable == "simulated":
        return None
    from sweeper.data.mixtures import as_mixture
    from sweeper.data.sources import for_trials
    from sweeper.data.usage import measure

    key = (
        cfg.data.model_dump_json(),
        as_mixture(cfg.training.mixture),
        spec.seq_len,
        getattr(spec.config, "image", None),
    )
    if key not in _DATA_USE:
        check_data(cfg, [spec])
        _DATA_USE[key] = measure(spec, for_trials(cfg.data.model_dump()), cfg.training.mixture)
    return _DATA_USE[key]


def select_sizes(specs: list, names, *, field: str, where: str) -> list:
    """The specs named in `names` (all of them when empty); an unknown name is an input error."""
    if not names:
        return specs
    known = {s.size: s for s in specs}
    missing = [n for n in names if n not in known]
    if missing:
        raise SweeperInputError(field, missing[0], f"not {where}; choose from {sorted(known)}")
    return [known[n] for n in names]


def task_seconds(spec, cfg: SweepConfig) -> float:
    """Scoring the `tasks:` section at a trial's end: each item's choices, forward only. Measured on the
    tiny ladder (2 idle cores: 2.4 s for tiny-1, 9.6 s for tiny-6, 3 tasks of 640 items): a fixed
    TASK_OVERHEAD_S, then forward FLOPs at TASK_SPEEDUP x the assumed training rate (no backward, batches of
    64 sequences)."""
    from sweeper.data.tasks import scored_generated

    image = getattr(spec.config, "image", None)
    data = cfg.data.model_dump()
    n_tasks = len(cfg.tasks.files) + len(scored_generated(image, data, cfg.tasks.generated))
    if not n_tasks:
        return 0.0
    tokens = n_tasks * cfg.tasks.n_items * 4 * min(spec.seq_len, 64 + (image.n_patches if image else 0))
    return TASK_OVERHEAD_S + tokens * spec.flops_per_token / 3.0 / (TASK_SPEEDUP * cfg.throughput_flops)


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
    use = data_use(spec, cfg)
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
        # the model's FLOPs at the assumed rate, and building its batches at the rate measured on the source
        est_seconds=float(
            flops / cfg.throughput_flops
            + (n_tokens / spec.seq_len * use.seconds_per_sequence if use is not None else 0.0)
            + (TRIAL_OVERHEAD_S + task_seconds(spec, cfg) if cfg.trainable == "torch" else 0.0)
        ),
        batch_size=int(batch_size),
        vocab_size=int(spec.config.vocab_size),
        epochs=float(use.epochs(n_tokens / spec.seq_len)) if use is not None else 0.0,
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
        out.append(
            _trial(
                spec,
                t.budget,
                ref.batch_size,
                steps,
                cfg,
                recipe_tokens=ref.n_tokens,
                recipe_budget=ref.budget,
            )
        )
    return out


def batch_size_at(spec, budget: float, cfg: SweepConfig) -> int:
    """Sequences per step at this size and slice: the recipe's (Table 6, fitted) or the fixed one."""
    if cfg.training.recipe == "fixed":
        return cfg.training.batch_size
    from sweeper.train.recipes import recipe_batch_size

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
    from sweeper.train.branch_costs import branched_flops

    trials = list(trials)
    return (
        branched_flops(trials, cooldown_frac)
        if cooldown_frac is not None
        else float(sum(t.flops for t in trials))
    )


def branchable(trials, specs, cfg: SweepConfig) -> list[PlannedTrial]:
    """The trials as they will train: with branching, on their size's shared recipe."""
    return share_size_recipes(trials, specs, cfg) if plan_cooldown(cfg) is not None else list(trials)


def plan_cooldown(cfg: SweepConfig) -> float | None:
    """The cooldown fraction when trials branch (trained sweeps with training.branching); else None."""
    return cfg.training.cooldown_frac if cfg.training.branching and cfg.trainable == "torch" else None


def choose_slices(specs, cfg: SweepConfig) -> tuple[float, ...]:
    """The largest geometric slices whose full grid fits in the total budget."""
    n, ratio = cfg.budgets.n_slices, cfg.budgets.ratio
    cheapest = min(
        s.flops_per_token
        * batch_size_at(s, s.flops_per_token * s.seq_len * cfg.budgets.min_steps, cfg)
        * s.seq_len
        for s in specs
    )
    low = cheapest * cfg.budgets.min_steps  # no slice below this can hold any trial
    best = None
    for top in np.geomspace(low * ratio ** (n - 1), max(cfg.budget, low * 2), 600):
        slices = geometric_slices(float(top), n, ratio)
        grid = _grid_for(slices, specs, cfg)
        if (
            grid is not None
            and grid_cost(branchable([t for ts in grid for t in ts], specs, cfg), plan_cooldown(cfg))
            <= cfg.budget
        ):
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


def check_tasks(cfg: SweepConfig) -> None:
    """Read every task file once before anything runs: a missing file or a bad line fails here (exit 2,
    naming the file and line), not at the end of every trial."""
    if cfg.trainable == "simulated":
        return
    from sweeper.data.tasks import load_jsonl_task, scored_generated

    for name, path in cfg.tasks.files.items():
        if not Path(path).is_file():
            raise SweeperInputError(f"tasks.files.{name}", path, "no such file; give a jsonl file's path")
        load_jsonl_task(path, name)
    scored = set(cfg.tasks.files) | set(scored_generated(True, cfg.data.model_dump(), cfg.tasks.generated))
    for name in (w for w in cfg.fit.watch if w.startswith("task.")):
        if name.split(".")[1] not in scored:
            raise SweeperInputError(
                "fit.watch",
                name,
                f"the trials score the tasks {sorted(scored) or 'none'}; tasks.files adds more",
            )


def check_data(cfg: SweepConfig, specs: list) -> None:
    """Open the configured corpus once before anything runs: a missing path, an empty or truncated shard, or
    a token id the models cannot embed fails here (exit 2, naming the file), not in every trial."""
    if cfg.data.source == "generated" or cfg.trainable == "simulated":
        return
    from sweeper.data.sources import for_trials

    data, vocab = for_trials(cfg.data.model_dump()), min(s.config.vocab_size for s in specs)
    for section in data["targets"].values() if cfg.data.source == "mixture" else [data]:
        _check_source(section, specs, vocab)


def _check_source(data: dict, specs, vocab: int) -> None:
    from sweeper.data.sources import (
        DOCUMENT_SOURCES,
        documents,
        packer_tokenizer,
        training_shards,
        validation_shards,
    )

    fields = ("data.path", "data.val_path") if data.get("val_path") else ("data.path",)
    if data["source"] in DOCUMENT_SOURCES:
        from sweeper.data.checks import check_documents

        packer_tokenizer(data)  # a missing or unreadable tokenizer fails here
        for spec in {s.config.image: s for s in specs}.values():
            for field in fields:
                check_documents(
                    documents(spec, data, field),
                    bad_images=data.get("bad_images", "skip"),
                    max_bad_share=data.get("bad_image_share", 0.1),
                    field=field,
                )
    elif data["source"] != "generated":
        for spec in {s.seq_len: s for s in specs}.values():  # hf_text: tokenizes the corpus once, here
            training_shards(spec, data, vocab)
            if data.get("val_path"):
                validation_shards(spec, data, vocab)


def make_plan(cfg: SweepConfig) -> Plan:
    """The initial grid design: every slice × every size that can fill it."""
    specs = model_specs(cfg)  # opens and checks the corpus (check_data) before anything is planned on it
    check_tasks(cfg)
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
    uses = [u for u in (data_use(s, cfg) for s in specs) if u is not None]
    plan = Plan(
        slices=slices,
        trials=tuple(branchable(trials, specs, cfg)),
        budget=cfg.budget,
        max_concurrent_trials=cfg.ray.max_concurrent_trials,
        cooldown_frac=plan_cooldown(cfg),
        sources=tuple({s.path: s for u in uses for s in u.sources}.values()),
        overhead_s=SWEEP_OVERHEAD_S if cfg.trainable == "torch" else 0.0,
    )
    if plan.spent_flops > cfg.budget * (1 + 1e-9):
        raise SweeperInputError(
            "budget",
            cfg.budget,
            f"the grid needs {plan.spent_flops:.3g} FLOPs; raise --budget or drop slices",
        )
    return plan


def format_plan(plan: Plan) -> str:
    """The table `sweeper plan` prints: nothing has been spent yet."""
    epochs = any(t.epochs > 0 for t in plan.trials)
    branching = (
        f" with cooldown branching ({plan.total_flops:.3g} as independent runs)"
        if plan.cooldown_frac is not None
        else ""
    )
    lines = [
        f"{'point':<34} {'N':>10} {'D':>12} {'C':>10} {'D/N':>7}{' epochs' if epochs else ''} {'est s':>8}"
    ]
    for t in plan.trials:
        lines.append(
            f"{t.point_id:<34} {t.n_params:>10,d} {t.n_tokens:>12,d} {t.flops:>10.3g} "
            f"{t.n_tokens / t.n_params:>7.1f}{f' {t.epochs:>6.2f}' if epochs else ''} {t.est_seconds:>8.1f}"
        )
    lines.append(
        f"{len(plan.trials)} trials on {len(plan.slices)} slices "
        f"({', '.join(f'{c:.3g}' for c in plan.slices)}); "
        f"{plan.spent_flops:.3g} of {plan.budget:.3g} FLOPs"
        f"{branching}; "
        f"~{_human(plan.est_wall_seconds)} at {plan.max_concurrent_trials} concurrent trials (estimate)"
    )
    lines += [
        f"data: {s.path}: {s.size:,d} training {s.unit}"
        f"{f' ({s.share:.0%} of the sequences)' if s.share < 1 else ''}"
        for s in plan.sources
    ]
    if plan.repetition_warning:
        lines.append(f"WARNING: {plan.repetition_warning}")
    return "\n".join(lines)


def repetition_warning(trials, sources) -> str | None:
    repeated = [t for t in trials if t.epochs > 1.0]
    if not repeated:
        return None
    worst = max(repeated, key=lambda t: t.epochs)
    size = " and ".join(f"{s.size:,d} {s.unit} of {s.path}" for s in sources)
    return (
        f"{len(repeated)} of {len(trials)} trials see their data more than once (up to {worst.epochs:.1f} "
        f"epochs over {size}, in {worst.point_id}); repeated data bends the scaling law (Muennighoff et al. "
        "2023): add data, or lower the budget or the largest slices"
    )


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 172800 else f"{seconds / 86400:.1f} days"
