"""Test-suite settings shared by every test folder.

Hypothesis runs derandomized by default, so that CI (and every rerun) explores the same examples and a
failure is reproducible; set OVERPARAM_HYPOTHESIS_RANDOM=1 to explore new examples locally.
"""

import os

from hypothesis import settings

settings.register_profile("overparam-ci", derandomize=True, print_blob=True)
settings.register_profile("overparam-explore", derandomize=False, print_blob=True)
explore = bool(os.environ.get("OVERPARAM_HYPOTHESIS_RANDOM"))
settings.load_profile("overparam-explore" if explore else "overparam-ci")
