"""Errors of the data layer."""

from overparam_theory.errors import InputError

CORPUS_HINT = (
    "to train on your own text instead, pass --corpus PATH (a text file, enwik8, text8 or a 1B-Words folder)"
)


class DataUnavailableError(InputError):
    """A built-in corpus could not be fetched (no network, no pip/npm, missing system package)."""
