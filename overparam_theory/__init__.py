"""Theory of how width changes gradient-descent convergence (pure numpy / scipy / sympy, no torch).

Conventions used throughout (see docs/theory.md):

* loss ``F(w) = (1/n) * sum_i (yhat_i - y_i)**2`` (mean squared error, *no* factor 1/2);
* gradient descent ``w_{t+1} = w_t - lr * grad F(w_t)``;
* width-K linear network with scalar input: ``yhat = (sum_k w_k) * x``, second layer fixed to ones
  (paper, Appendix B); vector input ``x in R^d``: ``yhat = 1^T W x`` with ``W in R^(K x d)``.

The names below are loaded on first use (PEP 562): importing a light submodule such as
``overparam_theory.errors`` (every CLI command and the empirical side do) must not pull in scipy and
mpmath through the closed forms — that alone cost ~0.3 s of every ``overparam`` start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# public name -> the submodule that defines it
_EXPORTS = {
    "RegressionData": "datasets",
    "builtin_dataset": "datasets",
    "load_csv": "datasets",
    "InputError": "errors",
    "INIT_LAW_NAMES": "init_laws",
    "InitLaw": "init_laws",
    "get_init_law": "init_laws",
    "sample": "init_laws",
    "LNNDynamics": "lnn",
    "divergence_width": "lnn",
    "expected_direct_distance": "lnn",
    "expected_first_step": "lnn",
    "expected_path_length": "lnn",
    "fastest_width": "lnn",
    "lnn_dynamics": "lnn",
    "minimiser": "lnn",
    "paper_condition_holds": "lnn",
    "scaled_lr": "lnn",
    "derive_yin": "yin",
    "halting_time_bound": "yin",
    "yin_identity_residual": "yin",
}

__all__ = [  # = sorted(_EXPORTS), spelled out for static analysers (checked by the tests)
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

if TYPE_CHECKING:  # static analysers see ordinary imports
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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'overparam_theory' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"overparam_theory.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
