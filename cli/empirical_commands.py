"""``overparam empirical ...`` sub-commands: each lives in its own module, registered on import."""

from overparam_cli import empirical_char_lm  # noqa: F401
