"""Registry of benchmarks: ``get_benchmark("char-lm")``. Adding one = a module + one line below."""

from __future__ import annotations

from overparam_empirical.benchmarks.base import Batch, BatchStream, Benchmark, Preset
from overparam_theory.errors import InputError

__all__ = ["Batch", "BatchStream", "Benchmark", "Preset", "get_benchmark", "benchmark_names"]

_FACTORIES = {
    "char-lm": ("overparam_empirical.benchmarks.char_lm", "CharLMBenchmark"),
}
_CACHE: dict[str, Benchmark] = {}


def benchmark_names() -> list[str]:
    return list(_FACTORIES)


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name`` (InputError naming the choices otherwise)."""
    if name not in _FACTORIES:
        raise InputError(f"unknown benchmark {name!r}; choose from {', '.join(_FACTORIES)}")
    if name not in _CACHE:
        import importlib

        module, cls = _FACTORIES[name]
        _CACHE[name] = getattr(importlib.import_module(module), cls)()
    return _CACHE[name]
