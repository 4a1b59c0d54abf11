"""A study SIGKILLed mid-run resumes to exactly the rows of an uninterrupted study (nothing lost or doubled).

The killed study runs two worker processes and writes a within-run checkpoint at every evaluation; it is
killed once at least one run is stored while others are still in flight. The rerun (in-process, one
worker) skips the stored runs and resumes the others from their checkpoints; it must produce, table by
table, the same rows as a study that was never interrupted (and never checkpointed) — which also checks
that worker processes, in-process training and checkpoint/resume give bitwise identical numbers.
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
from test_study import TINY, Recorder, comparable, tiny_spec  # noqa: E402

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
        spec = tiny_spec(
            {str(killed_dir)!r}, workers=2, overrides={OVERRIDES!r}, checkpoint_minutes=0.0, **{GRID!r}
        )
        run_study(spec, progress=None)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    store = killed_dir / "study.sqlite"
    deadline = time.monotonic() + 240
    try:
        # kill once a run is stored and another one in flight has written a checkpoint
        while stored_runs(store) < 1 or not list((killed_dir / "checkpoints").glob("*.pt")):
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
    # Orphaned workers stop at their next log step, or finish their run and delete its checkpoint
    # (a run can be past its last report when the kill lands): give them a moment before looking.
    time.sleep(2.0)
    left = {path.stem for path in (killed_dir / "checkpoints").glob("*.pt")}  # usually one or two

    recorder = Recorder()
    spec = tiny_spec(killed_dir, overrides=OVERRIDES, checkpoint_minutes=0.0, **GRID)
    resumed = run_study(spec, progress=recorder)
    first_step = {}
    for event in recorder.events:
        if event[0] == "progress":
            first_step.setdefault(event[1], event[2])
    for run_id in left:  # a run with a checkpoint continues from it instead of starting again
        assert first_step[run_id] > OVERRIDES["eval_every"], run_id
    assert resumed.skipped == done_at_kill and sum(resumed.completed.values()) == 6 - done_at_kill
    run_study(tiny_spec(clean_dir, overrides=OVERRIDES, **GRID), progress=None)

    killed, clean = comparable(killed_dir / "study.sqlite"), comparable(clean_dir / "study.sqlite")
    for table in clean:
        assert killed[table] == clean[table], table
    assert len(clean["runs"]) == 6
    assert list((killed_dir / "checkpoints").glob("*.pt")) == []  # every run finished and removed its file


def test_ctrl_c_stops_cleanly_and_keeps_finished_runs(tmp_path):
    out = tmp_path / "study"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from test_study import tiny_spec
        from overparam_empirical.study import run_study
        if __name__ == "__main__":
            spec = tiny_spec({str(out)!r}, workers=2, overrides={OVERRIDES!r}, **{GRID!r})
            outcome = run_study(spec, progress=None)
            print("INTERRUPTED", outcome.interrupted, sum(outcome.completed.values()), flush=True)
        """
    )
    path = tmp_path / "study_script.py"
    path.write_text(script)
    # A terminal's Ctrl-C sends SIGINT to the whole foreground process group: parent and workers.
    process = subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 240
    try:
        while stored_runs(out / "study.sqlite") < 1:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no run finished within 240 s"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr.decode()[-2000:]
    line = [x for x in stdout.decode().splitlines() if x.startswith("INTERRUPTED")][-1]
    _, interrupted, completed = line.split()
    assert interrupted == "True" and int(completed) == stored_runs(out / "study.sqlite") < 6
    assert "Traceback" not in stderr.decode()

    def running_in_session() -> list[str]:
        ps = subprocess.run(
            ["ps", "-o", "pid=,args=", "-s", str(process.pid)], capture_output=True, text=True
        )
        return [x for x in ps.stdout.splitlines() if x.strip() and "<defunct>" not in x]

    deadline = time.monotonic() + 10  # processes that are already exiting get a moment to finish
    while running_in_session() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running_in_session() == []  # no worker (or helper) outlives the study
