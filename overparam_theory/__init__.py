"""Theory of how width changes gradient-descent convergence (pure numpy / scipy / sympy, no torch).

Conventions used throughout (see docs/theory.md):

* loss ``F(w) = (1/n) * sum_i (yhat_i - y_i)**2`` (mean squared error, *no* factor 1/2);
* gradient descent ``w_{t+1} = w_t - lr * grad F(w_t)``;
* width-K linear network with scalar input: ``yhat = (sum_k w_k) * x``, second layer fixed to ones
  (paper, Appendix B); vector input ``x in R^d``: ``yhat = 1^T W x`` with ``W in R^(K x d)``.
"""

from overparam_theory.datasets import RegressionData, builtin_dataset, load_csv
from overparam_theory.errors import InputError
from overparam_theory.init_laws import INIT_LAW_NAMES, InitLaw, get_init_law, sample
from overparam_theory.lnn import (
    LNNDynamics,
    divergence_width,
    expected_direct_distance,
    expected_first_step,
    expected_path_length,
    fastest_width,
    lnn_dynamics,
    minimiser,
    paper_condition_holds,
    scaled_lr,
)
from overparam_theory.yin import derive_yin, halting_time_bound, yin_identity_residual

__all__ = [
    "INIT_LAW_NAMES",
    "InitLaw",
    "InputError",
    "LNNDynamics",
    "RegressionData",
    "builtin_dataset",
    "derive_yin",
    "divergence_width",
    "expected_direct_distance",
    "expected_first_step",
    "expected_path_length",
    "fastest_width",
    "get_init_law",
    "halting_time_bound",
    "lnn_dynamics",
    "load_csv",
    "minimiser",
    "paper_condition_holds",
    "sample",
    "scaled_lr",
    "yin_identity_residual",
]
