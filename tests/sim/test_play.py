"""``unio4 play`` (sim/play.py): a deterministic rollout of a bundle rendered to MP4."""

from __future__ import annotations

from pathlib import Path

import pytest

from unio4.cli import main


def test_play_writes_a_video_of_a_bundle(walking_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`unio4 play` renders a deterministic rollout to MP4 with the velocities written on the frames and, to the
    right of the robot, a trace of the commanded and measured velocities."""
    import imageio.v3 as iio

    out = tmp_path / "walk.mp4"
    assert main(["play", str(walking_bundle), "--command", "0.5,0,0", "--seconds", "1.2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"video: {out} (30 frames)" in text and "falls 0" in text
    frames = iio.imread(out, plugin="FFMPEG")
    assert frames.shape[0] == 30 and frames.shape[1:] == (480, 640 + 320, 3)
    assert frames[10].std() > 10  # a picture, not a blank frame
    trace = frames[-1][:, 640:].astype(int)
    red = (trace[..., 0] > 150) & (trace[..., 1] < 140) & (trace[..., 2] < 120)  # the measured vx line
    assert red[:160].sum() > 100 and red[160:].sum() < 20  # drawn in the vx row, only there
