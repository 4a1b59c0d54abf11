"""The paper's Appendix-B integrals for K = 1 and K = 2, reproduced and corrected symbolically (sympy).

Setting (paper, Appendix B): scalar input, second layer fixed to ones, init uniform in the interval
``(-R, R)`` (K = 1) or the disk of radius R (K = 2); the minimiser set is the point ``w = C`` (K = 1) or
the line ``w1 + w2 = C`` (K = 2), and ``D0`` is the distance from the init to it.

* K = 1, printed ``(1/2R) int_{C-R}^{C+R} x dx = C``: correct iff ``C >= R`` (then ``|C - w| = C - w``).
  For ``0 <= C < R``: ``E|C - w| = (C**2 + R**2) / (2R)``.
* K = 2, printed ``(1/R**2) int_0^{2 pi} int_0^R (C/sqrt 2 - r cos theta) r dr dtheta = C/sqrt 2``: with the
  printed normaliser ``1/R**2`` the integral is ``pi C / sqrt 2``; the uniform-disk normaliser is
  ``1/(pi R**2)`` (in the plain-text copy of the paper Greek letters are lost, so whether the pi is
  missing in print or only in the copy cannot be told; as it reads, the normaliser is wrong). The
  integrand drops the absolute value, so the result holds iff ``C >= R sqrt 2`` (line misses the disk).
  For ``0 <= C < R sqrt 2``, with ``k = C / (R sqrt 2)``:
  ``E[D0] = (2R / (3 pi)) (k**2 sqrt(1 - k**2) + 3 k asin k + 2 sqrt(1 - k**2))``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AppendixB", "appendix_b_integrals"]


@dataclass(frozen=True)
class AppendixB:
    """Sympy expressions in the positive symbols ``C`` and ``R`` (and ``k`` = C/(R sqrt 2) for K = 2).

    ``k1_paper`` (valid iff C >= R), ``k1_inside`` (0 <= C < R), ``k2_printed`` (with the printed
    ``1/R**2``), ``k2_paper`` (normaliser ``1/(pi R**2)``; valid iff C >= R sqrt 2), ``k2_inside``
    (0 <= C < R sqrt 2, in terms of k), and the conditions as text.
    """

    C: object
    R: object
    k: object
    k1_paper: object
    k1_inside: object
    k2_printed: object
    k2_paper: object
    k2_inside: object
    k1_condition: str = "C >= R"
    k2_condition: str = "C >= R*sqrt(2)"


def appendix_b_integrals() -> AppendixB:
    """Evaluate the Appendix-B integrals with sympy (exact; about a second)."""
    import sympy as sp

    C, R, w, r, theta = sp.symbols("C R w r theta", positive=True)
    k, x = sp.symbols("k x", positive=True)
    k1_paper = sp.simplify(sp.integrate(w, (w, C - R, C + R)) / (2 * R))
    # Inside (0 <= C < R): split |C - w| at w = C.
    k1_inside = sp.factor(
        sp.simplify((sp.integrate(C - w, (w, -R, C)) + sp.integrate(w - C, (w, C, R))) / (2 * R))
    )
    integrand = (C / sp.sqrt(2) - r * sp.cos(theta)) * r
    disk = sp.integrate(sp.integrate(integrand, (r, 0, R)), (theta, 0, 2 * sp.pi))
    k2_printed = sp.simplify(disk / R**2)
    k2_paper = sp.simplify(disk / (sp.pi * R**2))
    # Inside: D0 = |c - u| with c = C/sqrt 2 = k R and u = R x, x having the disk's marginal density
    # (2/pi) sqrt(1 - x^2) on [-1, 1]; E|c - u| = c + 2 E[(u - c)_+].
    positive_part = sp.integrate((x - k) * sp.sqrt(1 - x**2), (x, k, 1))
    k2_inside = sp.simplify(R * (k + 2 * (2 / sp.pi) * positive_part))
    return AppendixB(C, R, k, k1_paper, k1_inside, k2_printed, k2_paper, k2_inside)
