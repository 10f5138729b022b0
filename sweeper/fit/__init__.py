"""Scaling-law fitting: Approaches 1-3 of the reference study, with bootstrap CIs.

from sweeper.fit import fit_law
result = fit_law(frame, law="chinchilla", n_bootstrap=100, seed=0)
result.params["alpha"], result.ci["alpha"], result.derived["a"]
"""

from sweeper.fit.csv_input import read_runs_csv, validate_frame
from sweeper.fit.envelope import envelope_fit
from sweeper.fit.evaluate import compare_approaches, holdout_evaluate, prediction_errors
from sweeper.fit.isoflop import isoflop_fit
from sweeper.fit.laws import Law, LinearLogLaw
from sweeper.fit.multistart import SearchSettings
from sweeper.fit.parametric import fit_law, fit_per_target
from sweeper.fit.registry import LAWS, get_law, register_law
from sweeper.fit.result import FitResult

__all__ = [
    "FitResult",
    "LAWS",
    "Law",
    "LinearLogLaw",
    "SearchSettings",
    "compare_approaches",
    "envelope_fit",
    "fit_law",
    "fit_per_target",
    "get_law",
    "holdout_evaluate",
    "isoflop_fit",
    "prediction_errors",
    "read_runs_csv",
    "register_law",
    "validate_frame",
]
