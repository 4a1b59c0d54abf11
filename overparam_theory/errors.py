"""The one exception type for bad user input, shared by the whole toolkit.

API functions raise :class:`InputError` (a ``ValueError``) with a one-line message naming the problem;
the ``overparam`` command turns it into that line on stderr and exit code 2.
"""


class InputError(ValueError):
    """Invalid input given by the user (an argument, a file, a configuration)."""
