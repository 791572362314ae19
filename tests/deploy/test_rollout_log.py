"""Crash-safe rollout logging: chunks appear whole or not at all, even under kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from unio4.deploy.rollout_log import RolloutLog, read_events, read_log

WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from unio4.deploy.rollout_log import RolloutLog
    log = RolloutLog(sys.argv[1], {"source": "test"}, chunk_steps=5)
    k = 0
    while True:
        log.append({"step": k, "obs": np.full(47, k, np.float32), "q": np.arange(12.0) + k})
        if k % 7 == 0:
            log.event("tick", k=k)
        if k == 23:
            print("ready", flush=True)
        k += 1
        time.sleep(0.001)
    """
)


def test_records_round_trip_in_order(tmp_path: Path) -> None:
    log = RolloutLog(tmp_path / "run", {"source": "test"}, chunk_steps=4)
    for k in range(10):
        log.append({"step": k, "obs": np.full(3, k, np.float32)})
    log.event("damping", reason="duration")
    log.close({"reason": "duration"})
    log_data = read_log(tmp_path / "run")
    data, skipped = log_data.arrays, log_data.notes
    assert skipped == [] and log_data.segments == [10]
    np.testing.assert_array_equal(data["step"], np.arange(10))
    assert data["obs"].shape == (10, 3) and data["obs"].dtype == np.float32
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "chunk_000000.npz",
        "chunk_000001.npz",
        "chunk_000002.npz",
        "events.jsonl",
        "meta.yaml",
        "summary.yaml",
    ]
    assert read_events(tmp_path / "run") == [{"event": "damping", "reason": "duration"}]
    with pytest.raises(FileExistsError, match="already holds a rollout log"):
        RolloutLog(tmp_path / "run", {}, chunk_steps=4)


def test_kill_minus_nine_loses_at_most_the_open_chunk(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.15)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log_data = read_log(run)
    data, skipped = log_data.arrays, log_data.notes
    assert skipped == [] and len(log_data.segments) == 1  # every chunk file on disk is complete
    n = len(data["step"])
    assert n >= 20 and n % 5 == 0
    np.testing.assert_array_equal(data["step"], np.arange(n))  # no gap, no duplicate, in order
    np.testing.assert_array_equal(data["q"][:, 0], np.arange(n))
    events = read_events(run)
    assert [e["k"] for e in events] == list(range(0, 7 * len(events), 7))
    assert not (run / "summary.yaml").exists()


def test_torn_and_corrupt_files_are_reported_not_fatal(tmp_path: Path) -> None:
    log = RolloutLog(tmp_path, {"source": "test"}, chunk_steps=2)
    for k in range(4):
        log.append({"step": k})
    log.close({})
    (tmp_path / "chunk_000002.npz").write_bytes(b"PK\x03\x04 torn")  # e.g. a disk that lied about fsync
    with (tmp_path / "events.jsonl").open("a") as fh:
        fh.write('{"event": "damping", "rea')
    log_data = read_log(tmp_path)
    np.testing.assert_array_equal(log_data.arrays["step"], [0, 1, 2, 3])
    assert log_data.notes == ["chunk_000002.npz: unreadable (BadZipFile)"]
    assert log_data.segments == [4] and log_data.gaps == []  # after the data: nothing is split
    assert read_events(tmp_path) == []


def test_gaps_split_the_data_and_are_named(tmp_path: Path) -> None:
    """A lost or corrupt chunk in the middle, or one holding other keys, ends a stretch of steps."""
    log = RolloutLog(tmp_path, {"source": "test"}, chunk_steps=2)
    for k in range(12):
        log.append({"step": k, "q": np.full(3, k, np.float32)})
    log.close({})
    (tmp_path / "chunk_000001.npz").unlink()  # lost
    (tmp_path / "chunk_000003.npz").write_bytes(b"PK\x03\x04 torn")  # unreadable
    np.savez(tmp_path / "chunk_000005.npz", other=np.zeros(2))  # foreign keys
    data = read_log(tmp_path)
    assert data.segments == [2, 2, 2]
    np.testing.assert_array_equal(data.arrays["step"], [0, 1, 4, 5, 8, 9])
    np.testing.assert_array_equal(data.segment(1)["step"], [4, 5])
    assert data.gaps == ["chunk_000001.npz: missing", "chunk_000003.npz: unreadable (BadZipFile)"]
    assert data.notes[-1].startswith("chunk_000005.npz: holds keys ['other'], the run's chunks hold ['q', 'step']; not used")
    assert len(data) == 6


def test_a_run_without_usable_chunks_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "chunk_000000.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"no readable rollout chunks .*chunk_000000.npz: unreadable") as err:
        read_log(tmp_path)
    assert "\n" not in str(err.value)
