"""A study SIGKILLed mid-run resumes to exactly the rows of an uninterrupted study (nothing lost or doubled).

The killed study runs two worker processes and writes a within-run checkpoint at every evaluation; it is
killed right after it stored its first run, with the other worker frozen mid-run. The rerun (in-process, one
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

from overparam_empirical.study import run_study

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_study import TINY, Recorder, comparable, tiny_spec  # noqa: E402

# Widths of different cost: the two runs started first (20 and 16, longest first) do not end together,
# so when the first is stored the other is usually mid-run with a checkpoint to resume from.
GRID = {"widths": (8, 12, 16, 20), "seeds": (0,)}
N_RUNS = 4
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


def session_processes(session: int) -> list[str]:
    """Live processes of a session (the study, its workers, multiprocessing's helpers)."""
    ps = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-s", str(session)], capture_output=True, text=True)
    return [x for x in ps.stdout.splitlines() if x.strip() and " Z" not in x and "<defunct>" not in x]


def signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:  # everyone in it has exited already
        pass


def test_killed_study_resumes_with_identical_rows(tmp_path):
    # Deterministic, not timed: the study's parent blocks in on_result right after storing its first run
    # and freezes its workers (SIGSTOP) before saying so; the test SIGKILLs it then, so exactly one run is
    # stored and the other is in flight with its checkpoints. Then the workers are continued and, being
    # orphans, exit at their next report; only once they are all gone are the checkpoints looked at.
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    script = textwrap.dedent(
        f"""
        import multiprocessing, os, signal, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from test_study import tiny_spec
        from overparam_empirical.study import run_study

        def hold(run, result):
            for worker in multiprocessing.active_children():
                os.kill(worker.pid, signal.SIGSTOP)
            print("STORED", run.run_id, flush=True)
            time.sleep(600)

        if __name__ == "__main__":
            spec = tiny_spec(
                {str(killed_dir)!r}, workers=2, overrides={OVERRIDES!r}, checkpoint_minutes=0.0, **{GRID!r}
            )
            run_study(spec, progress=None, on_result=hold)
        """
    )
    path = tmp_path / "killed_study.py"
    path.write_text(script)
    process = subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        seen = []  # blocks until the first run is stored; other output (warnings) is kept for the message
        while not (seen and seen[-1].startswith("STORED")):
            line = process.stdout.readline().decode()
            assert line, "".join(seen)[-2000:] + " (the study ended before storing a run)"
            seen.append(line)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        signal_group(process.pid, signal.SIGCONT)  # the study's own process group (workers, helpers)
        deadline = time.monotonic() + 120  # orphans exit at their next log step or idle poll (~1 s)
        while session_processes(process.pid):
            assert time.monotonic() < deadline, session_processes(process.pid)
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
        signal_group(process.pid, signal.SIGKILL)
        process.stdout.close()
    store = killed_dir / "study.sqlite"
    assert stored_runs(store) == 1
    left = {path.stem for path in (killed_dir / "checkpoints").glob("*.pt")}  # the run that was in flight

    recorder = Recorder()
    spec = tiny_spec(killed_dir, overrides=OVERRIDES, checkpoint_minutes=0.0, **GRID)
    resumed = run_study(spec, progress=recorder)
    first_step = {}
    for event in recorder.events:
        if event[0] == "progress":
            first_step.setdefault(event[1], event[2])
    for run_id in left:  # a run with a checkpoint continues from it instead of starting again
        assert first_step[run_id] > OVERRIDES["eval_every"], run_id
    assert resumed.skipped == 1 and sum(resumed.completed.values()) == N_RUNS - 1
    run_study(tiny_spec(clean_dir, overrides=OVERRIDES, **GRID), progress=None)

    killed, clean = comparable(killed_dir / "study.sqlite"), comparable(clean_dir / "study.sqlite")
    for table in clean:
        assert killed[table] == clean[table], table
    assert len(clean["runs"]) == N_RUNS
    assert list((killed_dir / "checkpoints").glob("*.pt")) == []  # every run finished and removed its file


def test_ctrl_c_stops_cleanly_and_keeps_finished_runs(tmp_path):
    # Deterministic: the Ctrl-C lands while the parent waits in on_result after storing its first run
    # (a worker is still busy or idle), not whenever a polling loop happens to notice a stored run.
    out = tmp_path / "study"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from test_study import tiny_spec
        from overparam_empirical.study import run_study

        def hold(run, result):
            print("STORED", run.run_id, flush=True)
            time.sleep(600)

        if __name__ == "__main__":
            spec = tiny_spec({str(out)!r}, workers=2, overrides={OVERRIDES!r}, **{GRID!r})
            outcome = run_study(spec, progress=None, on_result=hold)
            print("INTERRUPTED", outcome.interrupted, sum(outcome.completed.values()), flush=True)
        """
    )
    path = tmp_path / "study_script.py"
    path.write_text(script)
    # A terminal's Ctrl-C sends SIGINT to the whole foreground process group: parent and workers.
    process = subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        seen = []  # blocks until the first run is stored
        while not (seen and seen[-1].startswith("STORED")):
            line = process.stdout.readline().decode()
            assert line, "".join(seen)[-2000:] + " (the study ended before storing a run)"
            seen.append(line)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            signal_group(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr.decode()[-2000:]
    line = [x for x in stdout.decode().splitlines() if x.startswith("INTERRUPTED")][-1]
    _, interrupted, completed = line.split()
    assert interrupted == "True" and int(completed) == stored_runs(out / "study.sqlite") == 1
    assert "Traceback" not in stderr.decode()

    deadline = time.monotonic() + 60  # processes already exiting get a moment (returns once all are gone)
    while session_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(process.pid) == []  # no worker (or helper) outlives the study
