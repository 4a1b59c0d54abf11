"""The command's error policy: bad input gives one line on stderr and exit code 2, never a traceback."""

import subprocess
import sys

import pytest


def overparam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "overparam_cli.main", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_both_command_groups():
    result = overparam("--help")
    assert result.returncode == 0
    assert "theory" in result.stdout and "empirical" in result.stdout


@pytest.mark.parametrize("args", [("bogus",), ("--no-such-option",), ("theory", "no-such-command")])
def test_usage_errors_are_one_line_with_exit_code_2(args):
    result = overparam(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("overparam: error:")
