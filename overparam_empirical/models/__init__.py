"""Width-parameterised models of the paper's benchmarks, each with a documented parameter-count formula."""

from overparam_empirical.models.rhn import (
    RecurrentHighwayLayer,
    RHNLanguageModel,
    rhn_parameter_count,
)

__all__ = ["RHNLanguageModel", "RecurrentHighwayLayer", "rhn_parameter_count"]
