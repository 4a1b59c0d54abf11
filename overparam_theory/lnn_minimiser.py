"""The minimiser set of the width-K linear network and the distance to it (input checks shared by lnn).

Network ``yhat = 1^T W x`` with ``W in R^(K x d)`` (scalar input: ``yhat = (sum_k w_k) x``) and loss
``F(W) = (1/n) sum_i (yhat_i - y_i)**2``. With ``v = W^T 1`` (the only combination the output sees),
``F = v^T S v - 2 v^T b + const`` where ``S = Sigma_xx = X^T X / n`` and ``b = Sigma_xy = X^T y / n``.

* Minimiser set: ``{W : S W^T 1 = b} = {W : P W^T 1 = v*}``, an affine subspace of ``R^(K d)``, with
  ``v* = S^+ b`` the min-norm least-squares solution and ``P`` the projection on ``range(S)`` (rank r).
  Scalar input: the hyperplane ``sum_k w_k = C``, ``C = sum x_i y_i / sum x_i**2``.
* Its constraint normals are ``1 u_j^T`` (``u_j`` an orthonormal basis of ``range(S)``), mutually
  orthogonal with Frobenius norm ``sqrt(K)``, hence
  ``dist(W, set) = ||P (v* - W^T 1)|| / sqrt(K)`` and the orthogonal projection of W on the set is
  ``W + 1 (P (v* - W^T 1))^T / K``. Gradient descent moves only along these normals, so this projection
  is also the GD limit from W (when GD converges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from overparam_theory.checks import check_int, check_positive
from overparam_theory.datasets import RegressionData
from overparam_theory.errors import InputError

__all__ = ["Minimiser", "minimiser", "check_width", "check_lr", "check_eps", "check_scale"]


def check_width(width: object, name: str = "width") -> int:
    """``width`` as an int >= 1, else :class:`InputError`."""
    return check_int(name, width)


def check_lr(lr: object) -> float:
    """Learning rate ``lr > 0`` (finite), else :class:`InputError`."""
    return check_positive("lr", lr)


def check_scale(scale: object) -> float:
    """Init scale (R or sigma) ``> 0`` (finite), else :class:`InputError`."""
    return check_positive("scale", scale)


def check_eps(eps: object) -> float:
    """Relative tolerance ``eps`` in (0, 1), else :class:`InputError`."""
    number = check_positive("eps", eps)
    if number >= 1.0:
        raise InputError(f"eps must be in (0, 1) (a relative tolerance), got {eps!r}")
    return number


def check_data(data: object) -> RegressionData:
    if not isinstance(data, RegressionData):
        raise InputError(f"data must be a RegressionData, got {type(data).__name__}")
    return data


@dataclass(frozen=True, eq=False)
class Minimiser:
    """The minimiser set ``{W : P W^T 1 = v*}`` of the width-K linear network (any K).

    ``v_star`` (d,): the min-norm least-squares solution ``Sigma_xx^+ Sigma_xy``;
    ``range_basis`` (d, r): orthonormal eigenvectors of ``Sigma_xx`` with positive eigenvalue;
    ``eigenvalues`` (r,): those eigenvalues, descending (the data's curvatures ``lambda_j``);
    ``is_scalar``: scalar-input data (then ``r = d = 1``, ``v_star = [C]``).
    """

    v_star: np.ndarray
    range_basis: np.ndarray
    eigenvalues: np.ndarray
    is_scalar: bool

    @property
    def input_dim(self) -> int:
        return int(self.v_star.shape[0])

    @property
    def rank(self) -> int:
        """``r = rank(Sigma_xx)``: the number of moving directions of ``v = W^T 1``."""
        return int(self.eigenvalues.shape[0])

    @property
    def C(self) -> float:
        """Scalar input: ``C = sum x_i y_i / sum x_i**2`` (the hyperplane is ``sum_k w_k = C``)."""
        if not self.is_scalar:
            raise InputError("C is defined for scalar-input data only; use v_star")
        return float(self.v_star[0])

    @property
    def target(self) -> np.ndarray:
        """``c = U_r^T v*`` (r,): the minimiser's coordinates in the range basis."""
        return self.range_basis.T @ self.v_star

    def _as_batch(self, W: np.ndarray) -> np.ndarray:
        W = np.asarray(W, dtype=np.float64)
        if self.is_scalar and W.ndim == 1:
            return W[:, None]
        if W.ndim < 2 or W.shape[-1] != self.input_dim:
            raise InputError(
                f"weights must have shape (..., K, {self.input_dim})"
                + (" or (K,)" if self.is_scalar else "")
                + f", got {W.shape}"
            )
        return W

    def residual(self, W: np.ndarray) -> np.ndarray:
        """``U_r^T (v* - W^T 1)`` (..., r): the coordinates of the distance vector (times sqrt(K))."""
        Wb = self._as_batch(W)
        v = Wb.sum(axis=-2)
        return (self.v_star - v) @ self.range_basis

    def distance(self, W: np.ndarray) -> np.ndarray | float:
        """``dist(W, minimiser set) = ||P (v* - W^T 1)|| / sqrt(K)`` (a float for one W, else (...,))."""
        Wb = self._as_batch(W)
        width = Wb.shape[-2]
        out = np.linalg.norm(self.residual(Wb), axis=-1) / math.sqrt(width)
        return float(out) if np.ndim(out) == 0 else out

    def project(self, W: np.ndarray) -> np.ndarray:
        """The orthogonal projection of W on the minimiser set (= the GD limit from W), same shape as W."""
        W = np.asarray(W, dtype=np.float64)
        Wb = self._as_batch(W)
        width = Wb.shape[-2]
        shift = (self.residual(Wb) @ self.range_basis.T) / width  # (..., d)
        return (Wb + shift[..., None, :]).reshape(W.shape)


def minimiser(data: RegressionData) -> Minimiser:
    """The minimiser set of the linear network on ``data`` (see the module docstring for the formulas).

    Scalar input: ``v* = [C]`` with ``C = sum x_i y_i / sum x_i**2`` and eigenvalue ``m2 = mean x**2``.
    Vector input: from the SVD ``X / sqrt(n) = U diag(s) V^T``; singular values below
    ``s_max * max(n, d) * machine_eps`` (numpy's rank rule) count as zero.
    """
    data = check_data(data)
    if data.is_scalar:
        x, y = data.x, data.y
        m2 = float(np.mean(x * x))
        C = float(np.dot(x, y) / np.dot(x, x))
        return Minimiser(np.array([C]), np.ones((1, 1)), np.array([m2]), True)
    X = data.x / math.sqrt(data.n)
    u, s, vt = np.linalg.svd(X, full_matrices=False)
    tol = s.max() * max(X.shape) * np.finfo(np.float64).eps
    keep = s > tol
    s_r, u_r, v_r = s[keep], u[:, keep], vt[keep].T
    v_star = v_r @ ((u_r.T @ (data.y / math.sqrt(data.n))) / s_r)
    return Minimiser(v_star, v_r, s_r**2, False)
