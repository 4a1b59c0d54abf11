"""``overparam theory ...`` sub-commands: each lives in its own module, registered on import."""

from overparam_cli import theory_lnn, theory_yin  # noqa: F401
