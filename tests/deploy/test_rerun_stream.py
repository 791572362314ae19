"""Rerun on the robot side (deploy/rerun_stream.py): ``deploy --rerun-save`` and the streamer that must
never block the control loop; without rerun-sdk the flags fail in one line.

Recordings go to .rrd files (no viewer here) and are read back with rerun's own chunk reader.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from tests.conftest import REPO
from unio4.deploy.rerun_stream import RERUN_MISSING, RerunStreamer
from unio4.deploy.rollout_log import read_log
from unio4.sim.rerun_view import read_recording


def test_deploy_rerun_save_streams_every_step_without_missing_deadlines(deploys: dict[str, Path]) -> None:
    """The streamed recording holds the run's steps, and the run kept its 50 Hz rate: the median step comes within
    2 ms (a tenth of a step) of its deadline. Missed deadlines count the machine's own stalls too, so they are printed."""
    plain, streamed = (yaml.safe_load((deploys[k] / "summary.yaml").read_text()) for k in ("plain", "rerun"))
    assert streamed["rerun"]["dropped"] == 0 and streamed["rerun"]["sent"] == 75 and streamed["rerun"]["error"] is None
    missed = plain["timing"]["policy_missed_deadlines"], streamed["timing"]["policy_missed_deadlines"]
    median = plain["timing"]["policy_period_error"]["p50_ms"], streamed["timing"]["policy_period_error"]["p50_ms"]
    print(f"missed 20 ms deadlines: without rerun {missed[0]}, with {missed[1]}; median period error {median} ms")
    assert median[1] < 2.0, median
    log = read_log(deploys["rerun"]).arrays
    rec = read_recording(deploys["rrd"])
    np.testing.assert_allclose(rec["joints/RR_calf/position"]["Scalars:scalars"].astype(float), log["joint_pos"][:, 8], atol=1e-6)
    assert "robot/RR_calf" in rec and "velocity/vx/measured" in rec


def test_streamer_drops_frames_rather_than_block_when_the_consumer_stalls() -> None:
    release = threading.Event()
    taken: list[int] = []

    def stalled(batch: list[tuple[str, int, dict[str, object]]]) -> None:
        taken.extend(i for kind, i, _ in batch if kind == "step")
        release.wait()  # a viewer that never answers

    stream = RerunStreamer(stalled, maxsize=20, interval_s=0.01)
    durations = []
    for k in range(1000):
        t0 = time.perf_counter()
        stream.put({"time": k * 0.02, "joint_pos": np.zeros(12)})
        durations.append(time.perf_counter() - t0)
        if k == 5:
            time.sleep(0.05)  # let the consumer take the first frames and stall on them
    stream.event("fault", reason="test")
    durations_ms = np.array(durations) * 1e3
    print(f"put(): median {np.median(durations_ms) * 1e3:.1f} us, max {durations_ms.max():.3f} ms; dropped {stream.stats.dropped}")
    assert durations_ms.max() < 5.0 and np.median(durations_ms) < 0.1
    assert stream.stats.steps == 1000 and stream.stats.dropped >= 1000 - 20 - len(taken) - 1
    assert stream.stats.dropped_events == 1
    release.set()
    stats = stream.close(timeout_s=5.0)
    assert stats.sent + stats.dropped == 1000, stats


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_without_rerun_sdk_the_flags_fail_in_one_line(tmp_path: Path) -> None:
    rrd = str(tmp_path / "x.rrd")
    for argv in (["deploy", "bundle", "--rerun-save", rrd], ["replay", str(tmp_path), "--mode", "rerun"], ["play", "b", "--rerun"]):
        code = f"import sys\nsys.modules['rerun'] = None\nfrom unio4.cli import main\nsys.exit(main({argv!r}))\n"
        result = _run(code)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"unio4: error: {RERUN_MISSING}\n"
    assert RERUN_MISSING == "--rerun needs rerun-sdk: pip install 'unio4[rerun]'"


def test_deploy_path_imports_rerun_only_with_the_flag(walking_bundle: Path, tmp_path: Path) -> None:
    """Without --rerun: neither torch nor rerun; with it: rerun, still no torch (and no MuJoCo: the legs are posed in numpy)."""
    for extra, rerun in (([], False), (["--rerun-save", str(tmp_path / "x.rrd")], True)):
        argv = [
            "deploy",
            str(walking_bundle),
            *extra,
            "--robot",
            "127.0.0.1:9",
            "--local-port",
            "0",
            "--set",
            "runtime.connect_timeout_s=0.1",
        ]
        code = (
            f"import sys\nfrom unio4.cli import main\nassert main({argv!r}) == 2\n"
            "mods = {m.split('.')[0] for m in sys.modules}\n"
            f"assert 'torch' not in mods and 'mujoco' not in mods and ('rerun' in mods) is {rerun}, "
            "sorted(mods & {'torch', 'mujoco', 'rerun'})\n"
        )
        result = _run(code)
        assert result.returncode == 0, result.stderr
        assert "no LowState within 0.1 s" in result.stderr
