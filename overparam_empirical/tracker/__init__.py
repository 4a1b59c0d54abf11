"""Weight-space traversal tracker (paper §4.3, Figs. 6–8): distance, step size, path length, angles As/Ae
and the Yin accounting sums per parameter group, attachable to any PyTorch training loop.

See docs/tracker.md for the definitions, the step indexing and the record schema.
"""

from overparam_empirical.tracker.groups import GROUP_NAMES, GroupAssignment, assign_groups
from overparam_empirical.tracker.schedule import parse_schedule
from overparam_empirical.tracker.snapshots import release_snapshot_memory
from overparam_empirical.tracker.tracker import AE_METHODS, SCHEMA_VERSION, TraversalTracker

__all__ = [
    "AE_METHODS",
    "GROUP_NAMES",
    "SCHEMA_VERSION",
    "GroupAssignment",
    "TraversalTracker",
    "assign_groups",
    "parse_schedule",
    "release_snapshot_memory",
]
