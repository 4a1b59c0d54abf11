"""A study SIGKILLed mid-run resumes to exactly the rows of an uninterrupted study (nothing lost or doubled).

The killed study runs two worker processes; it is killed once at least one run is stored while others
are still in flight. The rerun (in-process, one worker) then must produce, table by table, the same rows
as a study that was never interrupted — which also checks that worker processes and in-process training
give bitwise identical numbers.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from overparam_empirical.study import run_study

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_study import TINY, comparable, tiny_spec  # noqa: E402

GRID = {"widths": (8, 12, 16), "seeds": (0, 1)}
OVERRIDES = {**TINY, "max_steps": 80}


def stored_runs(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def test_killed_study_resumes_with_identical_rows(tmp_path):
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from test_study import tiny_spec
        from overparam_empirical.study import run_study
        spec = tiny_spec({str(killed_dir)!r}, workers=2, overrides={OVERRIDES!r}, **{GRID!r})
        run_study(spec, progress=None)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    store = killed_dir / "study.sqlite"
    deadline = time.monotonic() + 240
    try:
        while stored_runs(store) < 1:
            if process.poll() is not None:
                pytest.fail(
                    f"study ended before it could be killed: {process.stdout.read().decode()[-2000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail("no run finished within 240 s")
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    done_at_kill = stored_runs(store)
    assert 1 <= done_at_kill < 6, "the kill must land while runs are still in flight"

    resumed = run_study(tiny_spec(killed_dir, overrides=OVERRIDES, **GRID), progress=None)
    assert resumed.skipped == done_at_kill and sum(resumed.completed.values()) == 6 - done_at_kill
    run_study(tiny_spec(clean_dir, overrides=OVERRIDES, **GRID), progress=None)

    killed, clean = comparable(killed_dir / "study.sqlite"), comparable(clean_dir / "study.sqlite")
    for table in clean:
        assert killed[table] == clean[table], table
    assert len(clean["runs"]) == 6
