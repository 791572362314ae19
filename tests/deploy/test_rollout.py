"""Bounded rollouts (deploy/rollout.py): a rollout past its time is stopped."""

from __future__ import annotations

import sys
import time

from unio4.deploy.rollout import run_bounded


def test_a_rollout_past_its_time_is_stopped() -> None:
    started = time.monotonic()
    code, stderr = run_bounded([sys.executable, "-c", "import time; time.sleep(60)"], 0.5)
    assert code == 3 and "rollout stopped" in stderr and time.monotonic() - started < 5
