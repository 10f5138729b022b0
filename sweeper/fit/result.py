"""FitResult: the one immutable shape every fitting method returns."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from sweeper.fit.derived import optimum_at


@dataclass(frozen=True, kw_only=True)
class FitResult:
    law: str
    params: dict[str, float]
    derived: dict[str, float]
    objective: float
    n_runs: int
    target: str = "loss"
    method: str = "parametric"
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    n_bootstrap: int = 0
    ci_level: float = 0.95
    extras: dict = field(default_factory=dict)  # method-specific, JSON-able (slices, hull)
    identified: bool = True  # False: the runs do not pin the law down (see `warnings`)
    warnings: tuple[str, ...] = ()
    unidentified: tuple[str, ...] = ()  # quantities left without an interval

    def predict(self, n_params, n_tokens, **extra) -> np.ndarray:
        """Loss at (N, D[, ...]). Envelope fits use C = flops (keyword) or 6ND."""
        if self.method == "envelope":
            c = extra.get("flops")
            c = 6.0 * np.asarray(n_params, float) * np.asarray(n_tokens, float) if c is None else c
            return self.params["K"] * np.asarray(c, float) ** self.params["c"]
        if self.method == "isoflop":
            raise NotImplementedError(
                "an isoFLOP fit gives N_opt(C) and D_opt(C), not L(N, D); use predict_optimum(C)"
            )
        from sweeper.fit.registry import get_law

        return get_law(self.law).predict(self.params, n_params, n_tokens, **extra)

    def predict_optimum(self, compute) -> tuple[np.ndarray, np.ndarray]:
        """(N_opt, D_opt) at compute C from N = K_a C^a, D = K_b C^b."""
        return optimum_at(self.derived, compute)

    def ci_halfwidth(self, name: str) -> float:
        """Half the width of the bootstrap interval of `name`; inf if there is none
        (no bootstrap, or the runs do not identify `name`)."""
        if name not in self.ci or name in self.unidentified:
            return math.inf
        lo, hi = self.ci[name]
        return 0.5 * (hi - lo)

    def trusted(self, name: str) -> bool:
        """Whether `name` may be printed for people: the fit is identified and `name` is not among the
        quantities it leaves without an interval. Otherwise tables say "not identified", not a number."""
        return self.identified and name not in self.unidentified

    def ci_text(self, name: str, spec: str = ".4g") -> str:
        """'[lo, hi]', 'not identified', or '' when there is no bootstrap interval."""
        if name in self.unidentified:
            return "not identified"
        ci = self.ci.get(name)
        return f"[{ci[0]:{spec}}, {ci[1]:{spec}}]" if ci else ""

    def verdict_lines(self) -> list[str]:
        """What a reader must know before trusting any number of this fit."""
        if self.identified:
            return []
        return [
            "NOT IDENTIFIED: these runs do not pin the law down, so its exponents and the "
            "compute-optimal allocation are guesses:"
        ] + [f"  - {w}" for w in self.warnings]

    def value(self, name: str) -> float:
        return self.params[name] if name in self.params else self.derived[name]

    def widened(self, factor: float, why: str) -> FitResult:
        """The same fit with every interval `factor` times as wide about its estimate (each side
        scaled, so a skewed percentile interval stays skewed); `why` is kept in extras."""
        if factor == 1.0 or not self.ci:
            return self
        ci = {}
        for name, (lo, hi) in self.ci.items():
            v = self.value(name) if name in self.params or name in self.derived else 0.5 * (lo + hi)
            v = min(max(v, lo), hi)  # a percentile interval need not contain the point estimate
            ci[name] = (v - factor * (v - lo), v + factor * (hi - v))
        extras = {**self.extras, "ci_widening": {"factor": factor, "why": why}}
        return dataclasses.replace(self, ci=ci, extras=extras)

    def to_dict(self) -> dict:
        return {
            "law": self.law,
            "method": self.method,
            "target": self.target,
            "params": dict(self.params),
            "derived": dict(self.derived),
            "identified": self.identified,
            "warnings": list(self.warnings),
            "ci": {
                **{k: [float(lo), float(hi)] for k, (lo, hi) in self.ci.items()},
                **{k: None for k in self.unidentified if self.n_bootstrap},
            },
            "std": dict(self.std),
            "mean": dict(self.mean),
            "objective": float(self.objective),
            "n_runs": int(self.n_runs),
            "n_bootstrap": int(self.n_bootstrap),
            "ci_level": float(self.ci_level),
            "extras": self.extras,
        }

    @classmethod
    def from_dict(cls, data: dict) -> FitResult:
        return cls(
            law=data["law"],
            method=data.get("method", "parametric"),
            target=data.get("target", "loss"),
            params={k: float(v) for k, v in data["params"].items()},
            derived={k: float(v) for k, v in data.get("derived", {}).items()},
            ci={k: (float(v[0]), float(v[1])) for k, v in data.get("ci", {}).items() if v is not None},
            std={k: float(v) for k, v in data.get("std", {}).items()},
            mean={k: float(v) for k, v in data.get("mean", {}).items()},
            objective=float(data["objective"]),
            n_runs=int(data["n_runs"]),
            n_bootstrap=int(data.get("n_bootstrap", 0)),
            ci_level=float(data.get("ci_level", 0.95)),
            extras=data.get("extras", {}),
            identified=bool(data.get("identified", True)),
            warnings=tuple(data.get("warnings", ())),
            unidentified=tuple(k for k, v in data.get("ci", {}).items() if v is None),
        )


def summarise(samples: dict[str, np.ndarray], level: float):
    """Bootstrap mean, std and percentile interval for each named quantity."""
    mean, std, ci = {}, {}, {}
    tail = 100.0 * (1.0 - level) / 2.0
    for name, values in samples.items():
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        if v.size < 2:
            continue
        mean[name] = float(v.mean())
        std[name] = float(v.std(ddof=1))
        lo, hi = np.percentile(v, [tail, 100.0 - tail])
        ci[name] = (float(lo), float(hi))
    return mean, std, ci
