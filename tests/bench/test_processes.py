"""helpers.bench.processes: processes start together, report or fail loudly, and none is left running.

The child processes run ``_child`` below (spawned: they import this module).
Each writes its pid to a file first, so the test can check afterwards that
every one of them is gone, whatever happened.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from helpers.bench import processes


def _child(behaviour: str, pid_dir: str, gate, results) -> None:
    """A benchmark process that does what ``behaviour`` says."""
    (Path(pid_dir) / str(os.getpid())).touch()
    try:
        if behaviour == "fail before the gate":
            raise ValueError("no connection")
        processes.wait_at_gate(gate)
        if behaviour == "report":
            results.put({"pid": os.getpid(), "released": time.time()})
        elif behaviour == "raise":
            raise ValueError("boom")
        elif behaviour == "exit":
            os._exit(3)
        elif behaviour == "hang":
            time.sleep(600)
    except BaseException as error:
        processes.report_failure(results, error)


def _pids(pid_dir: Path) -> list[int]:
    return sorted(int(path.name) for path in pid_dir.iterdir())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_children_run_together_report_once_each_and_are_all_joined(tmp_path):
    jobs = [("report", str(tmp_path))] * 3
    seconds, results = processes.run_together(_child, jobs, timeout=60)
    assert seconds > 0
    assert sorted(result["pid"] for result in results) == _pids(tmp_path)
    assert len(set(_pids(tmp_path))) == 3
    assert all(_gone(pid) for pid in _pids(tmp_path))


def test_a_child_that_raises_is_reported_with_its_error(tmp_path):
    jobs = [("report", str(tmp_path)), ("raise", str(tmp_path))]
    with pytest.raises(RuntimeError, match="a benchmark process failed: ValueError: boom"):
        processes.run_together(_child, jobs, timeout=60)
    assert len(_pids(tmp_path)) == 2
    assert all(_gone(pid) for pid in _pids(tmp_path))


def test_a_child_that_fails_before_the_gate_stops_the_start_at_once(tmp_path):
    jobs = [("report", str(tmp_path)), ("fail before the gate", str(tmp_path))]
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start: ValueError: no connection"):
        processes.run_together(_child, jobs, timeout=60)
    assert time.monotonic() - started < processes.START_TIMEOUT_S / 2  # not the start timeout
    assert all(_gone(pid) for pid in _pids(tmp_path))


def test_a_child_that_dies_without_a_word_is_reported_with_its_exit_code(tmp_path):
    with pytest.raises(RuntimeError, match=r"died \(exit codes \[3\]\)"):
        processes.run_together(_child, [("exit", str(tmp_path))], timeout=60)
    assert all(_gone(pid) for pid in _pids(tmp_path))


def test_after_a_timeout_every_child_is_joined_or_terminated_none_left_alive(tmp_path):
    jobs = [("report", str(tmp_path)), ("hang", str(tmp_path))]
    with pytest.raises(TimeoutError, match="no result from the benchmark processes within 1 s"):
        processes.run_together(_child, jobs, timeout=1)
    assert len(_pids(tmp_path)) == 2
    assert all(_gone(pid) for pid in _pids(tmp_path))


def test_finish_skips_a_child_that_never_started():
    child = processes.spawn_context().Process(target=_child, args=("report", "/nowhere", None, None))
    processes.finish([child])
    assert child.pid is None


def test_stop_when_calls_stop_once_the_event_is_set_or_the_budget_is_spent():
    ctx = processes.spawn_context()
    event, stopped = ctx.Event(), threading.Event()
    processes.stop_when(event, stopped.set, budget_s=60)
    assert not stopped.wait(0.2)
    event.set()
    assert stopped.wait(5)

    spent = threading.Event()
    processes.stop_when(ctx.Event(), spent.set, budget_s=0.1)
    assert spent.wait(5)
