"""The tracking camera's stream (``deploy/tracker.py``): hostile datagrams are refused, a stale reading is not used,
and the emulated camera reads the trunk's true velocity where leg odometry misreads it."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from unio4.deploy.observations import rotate_inverse
from unio4.deploy.rollout_log import read_log
from unio4.deploy.tracker import READING, SUBSCRIBE, TrackerConfig, TrackerError, TrackerLink, decode_reading, encode_reading
from unio4.learning.robot.identify import held_motion
from unio4.sim.config import load_task_config
from unio4.sim.emulator import spawn_with_tracker


@pytest.mark.parametrize(
    ("datagram", "why"),
    [
        (b"", "0 bytes"),
        (encode_reading(1, 0.0, np.zeros(3))[:-1], "bytes"),
        (b"XXXX" + encode_reading(1, 0.0, np.zeros(3))[4:], "tag"),
        (encode_reading(1, 0.0, np.array([np.nan, 0.0, 0.0])), "finite"),
        (encode_reading(1, 0.0, np.array([0.0, np.inf, 0.0])), "finite"),
        (encode_reading(1, 0.0, np.array([0.0, 0.0, 11.0])), "within"),
        (READING.pack(b"U4TV", 1, float("nan"), 0.0, 0.0, 0.0), "finite"),
    ],
)
def test_a_datagram_that_is_not_a_reading_is_refused(datagram: bytes, why: str) -> None:
    with pytest.raises(TrackerError, match=why):
        decode_reading(datagram)


def test_a_reading_survives_its_datagram() -> None:
    v = np.array([0.61, -0.05, 0.01])
    np.testing.assert_allclose(decode_reading(encode_reading(2**33 + 5, 12.5, v)), v, rtol=1e-6)  # float32 on the wire


def test_the_link_uses_fresh_readings_from_its_tracker_only() -> None:
    """A fake tracker on loopback: the link subscribes, takes its reading, refuses a stranger's and garbage, and
    reads NaN once the reading is older than max_age_s."""
    tracker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tracker.bind(("127.0.0.1", 0))
    tracker.settimeout(2.0)
    link = TrackerLink(TrackerConfig(address=f"127.0.0.1:{tracker.getsockname()[1]}", max_age_s=0.05), now=0.0)
    try:
        datagram, subscriber = tracker.recvfrom(64)
        assert datagram == SUBSCRIBE
        assert np.all(np.isnan(link.poll(0.01)))  # nothing read yet
        tracker.sendto(encode_reading(0, 0.0, np.array([0.5, 0.1, 0.0])), subscriber)
        stranger.sendto(encode_reading(1, 0.0, np.array([3.0, 3.0, 3.0])), subscriber)  # not the tracker
        tracker.sendto(struct.pack("<4s", b"U4TV"), subscriber)  # the tracker's, but no reading
        time.sleep(0.05)
        np.testing.assert_allclose(link.poll(1.0), [0.5, 0.1, 0.0], rtol=1e-6)
        assert link.stats == {"readings": 1, "rejected": 2}
        np.testing.assert_allclose(link.poll(1.04), [0.5, 0.1, 0.0], rtol=1e-6)
        assert np.all(np.isnan(link.poll(1.06)))  # stale
        assert np.all(np.isnan(link.poll(1.6)))
        assert tracker.recvfrom(64)[0] == SUBSCRIBE  # asked again after resubscribe_s without a reading
    finally:
        link.close()
        tracker.close()
        stranger.close()
    with pytest.raises(ValueError, match="tracker.address 'robot': expected HOST:PORT"):
        TrackerConfig(address="robot")


def test_the_emulated_camera_reads_the_true_speed_where_odometry_does_not(walking_bundle: Path, tmp_path: Path) -> None:
    """Zoo robot 0 (floor at 0.41 x friction): the runtime logs the camera beside leg odometry; the camera agrees with
    the emulator's ground truth, and the check's reading of the walk (held_motion) takes it."""
    proc, port, tracker = spawn_with_tracker(["--lockstep", "--reality", "zoo:0", "--out", str(tmp_path / "truth.npz")])
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "unio4.cli", "deploy", str(walking_bundle), "--robot", f"127.0.0.1:{port}", "--local-port", "0"]
    argv += ["--duration", "5", "--out", str(run), "--command", "0.6,0,0", "--set", f"runtime.tracker.address=127.0.0.1:{tracker}"]
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    camera = read_log(run).arrays["tracker_lin_vel"]
    assert np.isfinite(camera).all()  # every policy step had a fresh reading
    held = held_motion(run, load_task_config("go1_flat"), skip_s=2.0, min_tracked=0.9)
    assert held.tracked is not None and len(held.tracked) == len(held.odometry) == 150
    truth = np.load(tmp_path / "truth.npz")
    rows = np.searchsorted(truth["t"], read_log(run).arrays["tick"][100:] * 0.002 - 1e-6)  # the steady steps' ticks
    true_vx = rotate_inverse(np, truth["base_quat"][rows], truth["base_lin_vel_world"][rows])[:, 0].mean()
    assert abs(held.tracked[:, 0].mean() - true_vx) < 0.005  # the camera's noise, 0.02 m/s a reading, averages out
    assert abs(held.odometry[:, 0].mean() - true_vx) > 0.01  # measured: 0.176 against 0.196 true
