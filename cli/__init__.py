"""The ``overparam`` command line (installed as the import package ``overparam_cli``)."""
