"""benchmarks/bench_montecarlo.py --quick runs, checks that both sides agree and ends in RESULT lines."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_montecarlo.py"


def test_quick_benchmark_prints_the_result_lines_last():
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("check: the loop's") for line in lines)  # the per-trial comparison passed
    assert re.fullmatch(r"RESULT mc_speedup=\d+(\.\d+)?", lines[-2])
    assert re.fullmatch(r"RESULT lnn_cli_seconds=\d+(\.\d+)?", lines[-1])
    assert float(lines[-2].split("=")[1]) > 1.0
