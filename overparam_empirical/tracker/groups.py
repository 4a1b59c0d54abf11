"""Assign a model's parameters to the traversal groups ``embedding``, ``hidden`` and ``softmax``.

The paper (§4.3) measures the traversal separately for the embedding layer, the hidden
(recurrent / conv / highway) layers, the output ("softmax") layer and all layers together.
Assignment, strongest rule first:

1. ``overrides`` passed to the tracker: ``{group: [fnmatch patterns on parameter names]}``;
2. ``model.traversal_groups() -> {group: [parameter names]}`` when the model defines it;
3. the automatic rule: parameters owned by an ``nn.Embedding`` / ``nn.EmbeddingBag`` go to
   ``embedding``; parameters owned by the last ``nn.Linear`` in registration order (taken as the
   layer that produces the output) go to ``softmax``; every other parameter goes to ``hidden``.

A parameter shared by several modules (tied embedding / softmax weights) is owned by the first module
that registers it, so a tied weight counts as ``embedding``. ``all`` is not assigned: it is the union of
the three groups. Frozen parameters (``requires_grad`` False when the tracker is built) are assigned
like any other, so that the summary can say which group they were taken out of, but are not tracked.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from overparam_theory.errors import InputError

GROUP_NAMES: tuple[str, ...] = ("embedding", "hidden", "softmax")
ALL_GROUP = "all"
_EMBEDDING_TYPES = (nn.Embedding, nn.EmbeddingBag)


@dataclass(frozen=True)
class GroupAssignment:
    """Which named parameters belong to which group.

    ``tracked[group]`` lists the trainable parameter names of each non-empty group in registration
    order; ``frozen[group]`` the names excluded because they did not require a gradient.
    """

    tracked: dict[str, list[str]]
    frozen: dict[str, list[str]]

    @property
    def tracked_names(self) -> list[str]:
        return [name for group in self.tracked for name in self.tracked[group]]


def automatic_groups(model: nn.Module) -> dict[str, str]:
    """The automatic rule: parameter name -> group, for every (deduplicated) parameter of ``model``."""
    owner_group: dict[int, str] = {}
    last_linear: nn.Linear | None = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last_linear = module
    for module in model.modules():
        if isinstance(module, _EMBEDDING_TYPES):
            group = "embedding"
        elif module is last_linear:
            group = "softmax"
        else:
            group = "hidden"
        for param in module.parameters(recurse=False):
            owner_group.setdefault(id(param), group)
    return {name: owner_group.get(id(param), "hidden") for name, param in model.named_parameters()}


def _check_group_name(group: object, where: str) -> str:
    if group == ALL_GROUP:
        raise InputError(f"{where}: group 'all' is every trainable parameter and cannot be assigned")
    if group not in GROUP_NAMES:
        raise InputError(f"{where}: unknown group {group!r} (known groups: {', '.join(GROUP_NAMES)})")
    return str(group)


def _model_declared_groups(model: nn.Module, names: Sequence[str]) -> dict[str, str]:
    declare = getattr(model, "traversal_groups", None)
    if declare is None or not callable(declare):
        return {}
    declared = declare()
    if not isinstance(declared, Mapping):
        raise InputError("model.traversal_groups() must return a dict {group: [parameter names]}")
    known = set(names)
    result: dict[str, str] = {}
    for group, members in declared.items():
        group = _check_group_name(group, "model.traversal_groups()")
        if isinstance(members, str):
            raise InputError(f"model.traversal_groups()[{group!r}] must be a list of names, not a string")
        for name in members:
            if name not in known:
                raise InputError(f"model.traversal_groups() names unknown parameter {name!r}")
            if name in result and result[name] != group:
                raise InputError(
                    f"model.traversal_groups() puts {name!r} in both {result[name]!r} and {group!r}"
                )
            result[name] = group
    return result


def _pattern_overrides(overrides: Mapping[str, Sequence[str]], names: Sequence[str]) -> dict[str, str]:
    if not isinstance(overrides, Mapping):
        raise InputError("groups must be a dict {group: [fnmatch patterns on parameter names]}")
    result: dict[str, str] = {}
    for group, patterns in overrides.items():
        group = _check_group_name(group, "groups")
        if isinstance(patterns, str):
            patterns = [patterns]
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise InputError(f"groups[{group!r}]: pattern {pattern!r} is not a string")
            matched = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
            if not matched:
                raise InputError(f"groups[{group!r}]: pattern {pattern!r} matches no parameter name")
            for name in matched:
                if name in result and result[name] != group:
                    raise InputError(
                        f"groups: parameter {name!r} matches patterns of both {result[name]!r} and {group!r}"
                    )
                result[name] = group
    return result


def assign_groups(model: nn.Module, overrides: Mapping[str, Sequence[str]] | None = None) -> GroupAssignment:
    """Assign every parameter of ``model`` to a group (rules in the module docstring).

    Raises ``InputError`` for a model without parameters or without trainable parameters, an unknown
    group name, a pattern that matches no parameter name, or a parameter placed in two groups.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"the tracker needs a torch.nn.Module, got {type(model).__name__}")
    named = list(model.named_parameters())
    if not named:
        raise InputError(f"model {type(model).__name__} has no parameters to track")
    names = [name for name, _ in named]
    group_of = automatic_groups(model)
    group_of.update(_model_declared_groups(model, names))
    group_of.update(_pattern_overrides(overrides or {}, names))

    tracked: dict[str, list[str]] = {group: [] for group in GROUP_NAMES}
    frozen: dict[str, list[str]] = {group: [] for group in GROUP_NAMES}
    for name, param in named:
        (tracked if param.requires_grad else frozen)[group_of[name]].append(name)
    if not any(tracked.values()):
        raise InputError(f"model {type(model).__name__} has no trainable parameters (all are frozen)")
    return GroupAssignment(
        tracked={group: members for group, members in tracked.items() if members},
        frozen=frozen,
    )
