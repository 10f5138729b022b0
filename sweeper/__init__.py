"""sweeper: Ray-distributed hyperparameter and isoFLOP sweeps for scaling-law studies."""

from sweeper.api import Sweeper, SweepResult
from sweeper.config.schema import SweepConfig

__all__ = ["Sweeper", "SweepConfig", "SweepResult"]
