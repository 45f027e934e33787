"""The evaluator: importance-weighted NLL, -ELBO, KL, perplexities, mutual information and active
units for any model implementing :class:`LatentVariableModel` (README, "Evaluation")."""

from .evaluate import epoch_diagnostics, evaluate, evaluate_run_model
from .importance import iw_log_likelihood
from .information import MI_ESTIMATORS, active_units, mutual_information
from .protocol import LatentVariableModel

__all__ = ["MI_ESTIMATORS", "LatentVariableModel", "active_units", "epoch_diagnostics", "evaluate",
           "evaluate_run_model", "iw_log_likelihood", "mutual_information"]
