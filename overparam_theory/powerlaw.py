"""Power-law fits of convergence quantities against model size, with bootstrap confidence intervals.

Three fits, shared by the theory (``overparam theory lnn``) and the empirical analysis:

* :func:`fit_power_law` — ``y ≈ a·M^(−k) + b`` with ``a > 0``, ``b ≥ 0`` (or the pure power law, ``b = 0``),
  fitted in **log space**: minimise ``Σ_i (log y_i − log(a·M_i^(−k) + b))²``.  Log space gives every
  point the same *relative* weight, which is what a log-log plot of steps against model size shows.
  The pure power law is then ordinary least squares of ``log y`` on ``log M`` (exact, no optimiser).  With
  the offset the problem is non-convex; it is solved by bounded least squares (scipy ``trf``) from
  several starting points (the pure fit, and ``b`` at fractions of ``min y`` with ``a, k`` from the
  regression of ``log(y − b)`` on ``log M``), keeping the lowest residual.
* :func:`bootstrap_power_law` — the same fit plus percentile bootstrap intervals for ``a, k, b``.  Repeated
  runs (seeds) are resampled *within* their group (by default the points sharing one ``M``), so every
  replicate keeps the same model sizes; without any repeated group it falls back to resampling points.
* :func:`fit_dataset_size_law` — the paper's Section 3.2 form ``steps ≈ D / M^k``, generalised to
  ``steps ≈ c·D^α / M^k`` and fitted jointly over dataset sizes by least squares in log space (linear in
  ``log c, α, k``), with t-intervals; ``alpha`` near 1 is the paper's "almost linear in D" claim, and
  :attr:`DatasetSizeFit.linear_in_d_consistent` says whether its interval contains 1.

Points where ``M``, ``y`` (or ``D``) is non-finite or not positive cannot enter a log-space fit: they are
dropped and counted (``n_dropped``).  Too few remaining points raise :class:`InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from overparam_theory.errors import InputError

__all__ = [
    "DatasetSizeFit",
    "PowerLawFit",
    "bootstrap_power_law",
    "fit_dataset_size_law",
    "fit_power_law",
    "student_t_quantile",
]

# Starting values of b, as fractions of min(y), for the multi-start offset fit (after the pure fit).
_OFFSET_START_FRACTIONS = (0.5, 0.9, 0.25, 0.75, 0.1, 0.97, 0.6, 0.35, 0.99, 0.05)


@dataclass(frozen=True)
class PowerLawFit:
    """Result of ``y ≈ a·M^(−k) + b`` (``b = 0`` when ``offset`` is false).

    ``a_ci, k_ci, b_ci`` are ``(low, high)`` bootstrap intervals at ``level`` (``None`` for a plain fit).
    ``rss_log`` is the residual sum of squares in log space; ``n_points`` the points used; ``n_dropped``
    the points dropped for being non-finite or non-positive.

    Bootstrap bookkeeping: ``n_boot`` replicates entered the intervals; ``n_boot_failed`` were left out,
    of which ``n_boot_nonfinite`` because their fit ran off to a non-finite ``a``, ``k`` or ``b`` (flat or
    step-like data: the optimiser drives ``k`` to ±large and ``a = exp(log a)`` overflows) and the rest
    because they had too few distinct sizes. ``replicates`` holds the kept replicates' ``(a, k, b)``
    (shape ``(n_boot, 3)`` via :meth:`replicate_array`), so that a caller can draw a prediction band
    (:meth:`band`) without refitting. ``log_a`` is ``log a``, finite even where ``a`` overflows.
    """

    a: float
    k: float
    b: float
    offset: bool
    n_points: int
    n_dropped: int
    rss_log: float
    a_ci: tuple[float, float] | None = None
    k_ci: tuple[float, float] | None = None
    b_ci: tuple[float, float] | None = None
    level: float | None = None
    n_boot: int = 0
    n_boot_failed: int = 0
    bootstrap_method: str | None = None
    n_boot_nonfinite: int = 0
    replicates: tuple[tuple[float, float, float], ...] | None = field(default=None, repr=False, compare=False)
    log_a: float | None = field(default=None, repr=False, compare=False)

    def predict(self, M) -> np.ndarray:
        """``a·M^(−k) + b`` at the given model size(s), evaluated as ``exp(log a − k log M) + b``.

        Far outside the fitted sizes the power term may overflow: that gives ``inf``, without a warning.
        """
        log_a = self.log_a if self.log_a is not None else _log(self.a)
        return _power_curve(log_a, self.k, self.b, np.asarray(M, dtype=float))

    def replicate_array(self) -> np.ndarray:
        """The kept bootstrap replicates as an ``(n_boot, 3)`` array of ``(a, k, b)`` (empty if none)."""
        if not self.replicates:
            return np.empty((0, 3))
        return np.array(self.replicates, dtype=float)

    def band(self, M, level: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Pointwise percentile band of the replicates' curves at ``M``, at ``level`` (default: the fit's).

        ``None`` without replicates (a plain fit). Curves that overflow far from the data enter as ``inf``
        (a percentile of them can then be ``inf``, never NaN).
        """
        reps = self.replicate_array()
        if reps.shape[0] < 2:
            return None
        level = _check_level(self.level if level is None else level)
        M = np.asarray(M, dtype=float)
        with np.errstate(divide="ignore"):
            log_a = np.log(reps[:, 0])
        curves = _power_curve(log_a[:, None], reps[:, 1:2], reps[:, 2:3], M.reshape(1, -1))
        tail = 100.0 * (1.0 - level) / 2.0
        low, high = _percentile_inf_safe(curves, [tail, 100.0 - tail])
        return low.reshape(M.shape), high.reshape(M.shape)

    def describe(self) -> str:
        """One line such as ``y ≈ 3.1·M^-0.52 + 0.8`` (with intervals when present)."""

        def fmt(name: str, value: float, ci: tuple[float, float] | None) -> str:
            return f"{name}={value:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")

        parts = [fmt("a", self.a, self.a_ci), fmt("k", self.k, self.k_ci)]
        if self.offset:
            parts.append(fmt("b", self.b, self.b_ci))
        return ", ".join(parts)


def _log(value: float) -> float:
    with np.errstate(divide="ignore"):
        return float(np.log(value))


def _power_curve(log_a, k, b, M) -> np.ndarray:
    """``exp(log a − k log M) + b`` without overflow warnings (overflow gives ``inf``)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return np.exp(log_a - k * np.log(M)) + b


def _percentile_inf_safe(values: np.ndarray, q: list[float]) -> np.ndarray:
    """``np.percentile`` over axis 0 that tolerates ``inf`` entries (numpy's interpolation would compute
    ``inf − inf = NaN`` between two infinite neighbours): interpolate where finite, else take the
    neighbour itself."""
    ordered = np.sort(values, axis=0)
    n = ordered.shape[0]
    out = []
    for quantile in q:
        position = (n - 1) * quantile / 100.0
        lower = int(np.floor(position))
        upper = min(lower + 1, n - 1)
        weight = position - lower
        lo, hi = ordered[lower], ordered[upper]
        with np.errstate(invalid="ignore"):
            mixed = lo + weight * (hi - lo)
        out.append(np.where(np.isfinite(mixed), mixed, np.where(weight < 0.5, lo, hi)))
    return np.array(out)


@dataclass(frozen=True)
class DatasetSizeFit:
    """Result of ``steps ≈ c·D^alpha / M^k`` (fitted jointly) and of the paper's ``alpha = 1`` form.

    ``*_ci`` are t-intervals at ``level`` from ordinary least squares in log space (``None`` when there are
    no residual degrees of freedom).  ``paper_c, paper_k, paper_rss_log`` are the fit with ``alpha`` fixed
    at 1, i.e. the paper's ``steps ≈ c·D/M^k``; compare ``paper_rss_log`` with ``rss_log``.
    """

    c: float
    alpha: float
    k: float
    c_ci: tuple[float, float] | None
    alpha_ci: tuple[float, float] | None
    k_ci: tuple[float, float] | None
    level: float
    n_points: int
    n_dropped: int
    rss_log: float
    paper_c: float
    paper_k: float
    paper_rss_log: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def linear_in_d_consistent(self) -> bool | None:
        """Whether the ``alpha`` interval contains 1 (the paper's linear-in-D claim); ``None`` if unknown."""
        if self.alpha_ci is None:
            return None
        return bool(self.alpha_ci[0] <= 1.0 <= self.alpha_ci[1])

    def predict(self, D, M) -> np.ndarray:
        """``c·D^alpha / M^k``."""
        return self.c * np.asarray(D, dtype=float) ** self.alpha / np.asarray(M, dtype=float) ** self.k


# --------------------------------------------------------------------------------------------------
# input handling


def _as_vector(values, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numbers: {exc}") from None
    if array.ndim == 0:
        raise InputError(f"{name} must be a sequence of numbers, got a single value")
    if array.ndim > 1:
        if max(array.shape) != array.size:
            raise InputError(f"{name} must be one-dimensional, got shape {array.shape}")
        array = array.reshape(-1)
    return array


def _clean(columns: dict[str, object], min_points: int, what: str) -> tuple[list[np.ndarray], int]:
    """Arrays of equal length with the non-finite / non-positive rows dropped, and how many were dropped."""
    arrays = [_as_vector(values, name) for name, values in columns.items()]
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        shapes = ", ".join(f"{name} has {len(a)}" for name, a in zip(columns, arrays, strict=True))
        raise InputError(f"{what}: inputs must have the same length ({shapes})")
    keep = np.ones(len(arrays[0]), dtype=bool)
    for array in arrays:
        with np.errstate(invalid="ignore"):
            keep &= np.isfinite(array) & (array > 0)
    n_dropped = int((~keep).sum())
    kept = [array[keep] for array in arrays]
    if int(keep.sum()) < min_points:
        raise InputError(
            f"{what} needs at least {min_points} finite positive points, got {int(keep.sum())} "
            f"({n_dropped} dropped as non-finite or non-positive)"
        )
    return kept, n_dropped


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise InputError(f"confidence level must lie strictly between 0 and 1, got {level}")
    return level


# --------------------------------------------------------------------------------------------------
# the fits


def _pure_fit_log(log_m: np.ndarray, log_y: np.ndarray) -> tuple[float, float, float]:
    """OLS of log y on log M: returns (log a, k, rss)."""
    design = np.column_stack([np.ones_like(log_m), -log_m])
    coef, *_ = np.linalg.lstsq(design, log_y, rcond=None)
    rss = float(np.sum((log_y - design @ coef) ** 2))
    return float(coef[0]), float(coef[1]), rss


def _offset_residuals(theta: np.ndarray, log_m: np.ndarray, log_y: np.ndarray) -> np.ndarray:
    log_a, k, b = theta
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        value = np.exp(log_a - k * log_m) + b
        return log_y - np.log(value)


def _offset_jacobian(theta: np.ndarray, log_m: np.ndarray, log_y: np.ndarray) -> np.ndarray:
    log_a, k, b = theta
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        power = np.exp(log_a - k * log_m)
        value = power + b
        return np.column_stack([-power / value, power * log_m / value, -1.0 / value])


def _offset_fit_normalised(
    log_m: np.ndarray, log_y: np.ndarray, starts: list[np.ndarray]
) -> tuple[np.ndarray, float]:
    """Best (log a, k, b) over the starting points, on data normalised to O(1); returns (theta, rss)."""
    from scipy.optimize import least_squares  # imported here: scipy.optimize costs ~0.4 s to import

    best_theta, best_rss = None, np.inf
    for start in starts:
        start = np.array(start, dtype=float)
        start[2] = max(start[2], 0.0)
        try:
            result = least_squares(
                _offset_residuals,
                start,
                jac=_offset_jacobian,
                bounds=([-np.inf, -np.inf, 0.0], [np.inf, np.inf, np.inf]),
                args=(log_m, log_y),
                method="trf",
                x_scale="jac",
                max_nfev=400,
            )
        except (ValueError, FloatingPointError):
            continue
        residuals = _offset_residuals(result.x, log_m, log_y)
        rss = float(np.sum(residuals**2))
        if np.isfinite(rss) and rss < best_rss:
            best_theta, best_rss = result.x, rss
    if best_theta is None:  # cannot happen while the pure-fit start is valid; kept as a guard
        raise InputError("power-law fit failed from every starting point")
    return best_theta, best_rss


def _offset_starts(log_m: np.ndarray, log_y: np.ndarray, n_starts: int) -> list[np.ndarray]:
    log_a, k, _ = _pure_fit_log(log_m, log_y)
    starts = [np.array([log_a, k, 0.0])]
    y = np.exp(log_y)
    y_min = float(y.min())
    for fraction in _OFFSET_START_FRACTIONS[: max(0, n_starts - 1)]:
        b = fraction * y_min
        log_a_b, k_b, _ = _pure_fit_log(log_m, np.log(y - b))
        starts.append(np.array([log_a_b, k_b, b]))
    return starts


def _centred_logs(m: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(log M − m_shift, log y − y_shift, m_shift, y_shift) with the shifts the means of the logs: the fit
    runs on data scaled by their geometric means so that a and b are O(1) whatever the units."""
    log_m, log_y = np.log(m), np.log(y)
    m_shift, y_shift = float(np.mean(log_m)), float(np.mean(log_y))
    return log_m - m_shift, log_y - y_shift, m_shift, y_shift


def _fit_arrays(m: np.ndarray, y: np.ndarray, offset: bool, n_starts: int) -> tuple[float, ...]:
    """(a, k, b, rss_log, log a) for clean positive arrays, fitted on data scaled by geometric means.

    ``a`` overflows to ``inf`` when the fit runs off to a huge exponent (step-like data); ``log a`` stays
    finite."""
    log_m, log_y, m_shift, y_shift = _centred_logs(m, y)
    if not offset:
        log_a, k, rss = _pure_fit_log(log_m, log_y)
        b_norm = 0.0
    else:
        theta, rss = _offset_fit_normalised(log_m, log_y, _offset_starts(log_m, log_y, n_starts))
        log_a, k, b_norm = (float(v) for v in theta)
    # undo the scaling: y = e^{y_shift}·(A·(M/e^{m_shift})^{-k} + b_norm)
    log_a_raw = log_a + y_shift + k * m_shift
    with np.errstate(over="ignore"):
        a = float(np.exp(log_a_raw))
    b = float(b_norm * np.exp(y_shift))
    return a, float(k), b, float(rss), float(log_a_raw)


def _require_distinct(m: np.ndarray, needed: int, what: str) -> None:
    distinct = len(np.unique(m))
    if distinct < needed:
        raise InputError(f"{what} needs at least {needed} distinct model sizes, got {distinct}")


def fit_power_law(M, y, *, offset: bool = True, n_starts: int = 8) -> PowerLawFit:
    """Fit ``y ≈ a·M^(−k) + b`` in log space (``b = 0`` when ``offset=False``).

    Minimises ``Σ_i (log y_i − log(a·M_i^(−k) + b))²`` subject to ``a > 0, b ≥ 0`` from ``n_starts``
    starting points (the offset fit); the pure power law is the exact OLS line of ``log y`` on ``log M``.
    Needs at least 3 points at 3 distinct ``M`` with the offset, 2 without.
    """
    if int(n_starts) < 1:
        raise InputError(f"n_starts must be at least 1, got {n_starts}")
    needed = 3 if offset else 2
    (m, yy), n_dropped = _clean({"M": M, "y": y}, needed, "power-law fit")
    _require_distinct(m, needed, "power-law fit")
    a, k, b, rss, log_a = _fit_arrays(m, yy, offset, int(n_starts))
    return PowerLawFit(
        a=a, k=k, b=b, offset=offset, n_points=len(m), n_dropped=n_dropped, rss_log=rss, log_a=log_a
    )


def _group_indices(groups: np.ndarray) -> list[np.ndarray]:
    _, inverse = np.unique(groups, return_inverse=True)
    return [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]


def bootstrap_power_law(
    M,
    y,
    *,
    groups=None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    offset: bool = True,
    n_starts: int = 8,
) -> PowerLawFit:
    """:func:`fit_power_law` plus percentile bootstrap intervals for ``a, k, b``.

    Resampling: the points of each group (``groups[i]`` labels point ``i``; default: points with equal
    ``M``, i.e. the repeated seeds of one model size) are drawn with replacement *within* the group, so each
    replicate has the same design.  If no group holds two or more points there is nothing to resample
    within; the points themselves are then resampled (pairs bootstrap) and ``bootstrap_method`` says so.
    Replicates whose fit is impossible (fewer distinct sizes than parameters) or runs off to non-finite
    parameters (flat or step-like data; counted separately in ``n_boot_nonfinite``) are skipped and
    counted in ``n_boot_failed``: the intervals come from the ``n_boot`` finite replicates, which are
    returned in ``replicates`` (prediction bands: :meth:`PowerLawFit.band`).  Replicate fits start from
    the full-data optimum and the pure fit (2 starts).  Deterministic for a given ``seed``; emits no
    floating-point warnings.
    """
    level = _check_level(level)
    if int(n_boot) < 2:
        raise InputError(f"n_boot must be at least 2, got {n_boot}")
    needed = 3 if offset else 2
    (m, yy), n_dropped = _clean({"M": M, "y": y}, needed, "power-law bootstrap")
    _require_distinct(m, needed, "power-law bootstrap")
    if groups is None:
        labels = m
    else:
        m_all, y_all = _as_vector(M, "M"), _as_vector(y, "y")
        group_array = np.asarray(groups).reshape(-1)
        if len(group_array) != len(m_all):
            raise InputError(f"groups must have one label per point: got {len(group_array)} for {len(m_all)}")
        with np.errstate(invalid="ignore"):
            keep = np.isfinite(m_all) & np.isfinite(y_all) & (m_all > 0) & (y_all > 0)
        labels = group_array[keep]
    members = _group_indices(labels)

    a, k, b, rss, log_a = _fit_arrays(m, yy, offset, int(n_starts))
    rng = np.random.default_rng(seed)
    replicated = any(len(idx) > 1 for idx in members)
    method = "within-group" if replicated else "pairs"
    samples, failed, nonfinite = [], 0, 0
    for _ in range(int(n_boot)):
        if replicated:
            picks = np.concatenate([idx[rng.integers(0, len(idx), len(idx))] for idx in members])
        else:
            picks = rng.integers(0, len(m), len(m))
        m_b, y_b = m[picks], yy[picks]
        if len(np.unique(m_b)) < needed:
            failed += 1
            continue
        replicate = _refit(m_b, y_b, offset, (log_a, k, b))
        if not all(np.isfinite(replicate)):  # the optimiser ran off (flat or step-like data)
            failed += 1
            nonfinite += 1
            continue
        samples.append(replicate)
    if len(samples) < 2:
        raise InputError(
            f"power-law bootstrap: only {len(samples)} of {n_boot} replicates could be fitted "
            f"({nonfinite} ran off to non-finite parameters)"
        )
    boot = np.array(samples)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    return PowerLawFit(
        a=a,
        k=k,
        b=b,
        offset=offset,
        n_points=len(m),
        n_dropped=n_dropped,
        rss_log=rss,
        a_ci=(float(low[0]), float(high[0])),
        k_ci=(float(low[1]), float(high[1])),
        b_ci=(float(low[2]), float(high[2])),
        level=level,
        n_boot=len(samples),
        n_boot_failed=failed,
        bootstrap_method=method,
        n_boot_nonfinite=nonfinite,
        replicates=tuple(samples),
        log_a=log_a,
    )


def _refit(m: np.ndarray, y: np.ndarray, offset: bool, full: tuple[float, float, float]) -> tuple:
    """One bootstrap replicate's (a, k, b): two starts (full-data optimum, pure fit) for speed.

    ``full`` is the full-data ``(log a, k, b)``. ``a`` is ``inf`` when the replicate's fit ran off to a
    huge exponent (``exp`` overflows, silently): the caller drops such replicates.
    """
    log_m, log_y, m_shift, y_shift = _centred_logs(m, y)
    if not offset:
        log_a, k, _ = _pure_fit_log(log_m, log_y)
        b_norm = 0.0
    else:
        log_a_full, k_full, b_full = full
        start_full = np.array([log_a_full - y_shift - k_full * m_shift, k_full, b_full * np.exp(-y_shift)])
        starts = [start_full, *_offset_starts(log_m, log_y, 1)]
        theta, _ = _offset_fit_normalised(log_m, log_y, starts)
        log_a, k, b_norm = (float(v) for v in theta)
    with np.errstate(over="ignore", invalid="ignore"):
        a = float(np.exp(log_a + y_shift + k * m_shift))
    return (a, float(k), float(b_norm * np.exp(y_shift)))


def student_t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom (``inf`` gives the normal quantile)."""
    from scipy.special import ndtri, stdtrit  # scipy.special is much lighter to import than scipy.stats

    if not np.isfinite(df):
        return float(ndtri(p))
    return float(stdtrit(df, p))


def fit_dataset_size_law(D, M, steps, *, level: float = 0.95) -> DatasetSizeFit:
    """Fit ``steps ≈ c·D^alpha / M^k`` jointly over dataset sizes ``D`` and model sizes ``M``.

    Ordinary least squares of ``log steps = log c + alpha·log D − k·log M`` with t-intervals at ``level``
    (needs 4+ points for an interval: 3 coefficients and one residual degree of freedom); also the paper's
    form with ``alpha = 1`` (``steps ≈ c·D/M^k``, Section 3.2) for comparison.  Needs at least 2 distinct
    ``D`` and 2 distinct ``M``.
    """
    level = _check_level(level)
    (d, m, s), n_dropped = _clean({"D": D, "M": M, "steps": steps}, 3, "dataset-size fit")
    if len(np.unique(d)) < 2:
        raise InputError("dataset-size fit needs at least 2 distinct dataset sizes D")
    _require_distinct(m, 2, "dataset-size fit")
    log_d, log_m, log_s = np.log(d), np.log(m), np.log(s)
    design = np.column_stack([np.ones_like(log_d), log_d, -log_m])
    if np.linalg.matrix_rank(design) < 3:
        raise InputError("dataset-size fit: D and M vary together in log space; cannot separate them")
    coef, *_ = np.linalg.lstsq(design, log_s, rcond=None)
    residual = log_s - design @ coef
    rss = float(residual @ residual)
    dof = len(log_s) - 3
    notes: list[str] = []
    if dof > 0:
        sigma2 = rss / dof
        cov = sigma2 * np.linalg.inv(design.T @ design)
        half = student_t_quantile(0.5 + level / 2.0, dof) * np.sqrt(np.diag(cov))
        log_c_ci = (coef[0] - half[0], coef[0] + half[0])
        c_ci = (float(np.exp(log_c_ci[0])), float(np.exp(log_c_ci[1])))
        alpha_ci = (float(coef[1] - half[1]), float(coef[1] + half[1]))
        k_ci = (float(coef[2] - half[2]), float(coef[2] + half[2]))
    else:
        c_ci = alpha_ci = k_ci = None
        notes.append("no residual degrees of freedom: intervals unavailable (need 4+ points)")
    # alpha fixed at 1: log(steps/D) = log c − k log M
    paper_design = np.column_stack([np.ones_like(log_m), -log_m])
    paper_coef, *_ = np.linalg.lstsq(paper_design, log_s - log_d, rcond=None)
    paper_residual = log_s - log_d - paper_design @ paper_coef
    return DatasetSizeFit(
        c=float(np.exp(coef[0])),
        alpha=float(coef[1]),
        k=float(coef[2]),
        c_ci=c_ci,
        alpha_ci=alpha_ci,
        k_ci=k_ci,
        level=level,
        n_points=len(log_s),
        n_dropped=n_dropped,
        rss_log=rss,
        paper_c=float(np.exp(paper_coef[0])),
        paper_k=float(paper_coef[1]),
        paper_rss_log=float(paper_residual @ paper_residual),
        notes=tuple(notes),
    )
