"""Theory of how width changes gradient-descent convergence (pure numpy / scipy / sympy, no torch).

Conventions used throughout (see docs/theory.md):

* loss ``F(w) = (1/n) * sum_i (yhat_i - y_i)**2`` (mean squared error, *no* factor 1/2);
* gradient descent ``w_{t+1} = w_t - lr * grad F(w_t)``;
* width-K linear network with scalar input: ``yhat = (sum_k w_k) * x``, second layer fixed to ones
  (paper, Appendix B).
"""

from overparam_theory.errors import InputError

__all__ = ["InputError"]
