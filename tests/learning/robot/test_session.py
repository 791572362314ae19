"""``unio4 session`` (learning/robot/session.py) against ``unio4 emulate``: every phase runs for real, and a
session resumes at the phase it stopped in (after a clean stop between phases, and after kill -9 mid-deploy);
the sim-to-sim gate's rules."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import STALL_SLACK
from tests.learning.robot.conftest import small_config
from unio4.configs.loader import ConfigError, from_dict, load, resolve_config_path, to_dict
from unio4.learning.checkpoint import save_checkpoint
from unio4.learning.robot.session import (
    PHASES,
    GateConfig,
    Session,
    SessionConfig,
    SimFinetuneConfig,
    actor_network,
    gate_refusals,
    start_task,
    time_on_robot,
)
from unio4.sim.config import load_task_config
from unio4.sim.emulator import spawn


@pytest.fixture
def emulator_port() -> Iterator[int]:
    proc, port = spawn(["--lockstep"])
    yield port
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)


def test_session_resumes_at_every_phase(walking_bundle: Path, tmp_path: Path, emulator_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    task = load_task_config("go1_flat")
    cfg = small_config(emulator_port, iterations=1)
    Session(tmp_path, cfg, task).start(walking_bundle.parent / "bc.pt")
    assert json.loads((tmp_path / "state.json").read_text())["start_gate"]["passed"] is True  # gated before any rollout
    monkeypatch.setattr(Session, "gate_start_bundle", lambda *args: pytest.fail("a resumed session gated its start bundle again"))
    for phase in PHASES:  # a fresh Session object per phase: nothing survives but the files
        session = Session(tmp_path, cfg, task)
        assert session.state.phase == phase
        session.run(stop_after_phase=phase)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["iteration"] == 1 and state["phase"] == "done"
    assert Session(tmp_path, cfg, task).run() == state["rows"]  # resuming a finished iteration repeats nothing
    d = tmp_path / "iter_001"
    assert [p.name for p in d.glob("run_*")] == ["run_0"]  # deployed once
    assert yaml.safe_load((d / "run_0" / "meta.yaml").read_text())["runtime"]["safety"]["stale_ms"] == 500  # runtime_overrides
    assert (d / "data.h5").is_file() and (d / "checkpoint.pt").is_file() and (d / "bundle" / "policy.onnx").is_file()
    row = state["rows"][0]
    assert row["steps"] == 150 and row["iteration"] == 1
    assert row["gate_error_start"] == row["gate_error_old"]  # in iteration 1 the current bundle is the first one
    assert row["safety_stops"] == int(yaml.safe_load((d / "run_0" / "summary.yaml").read_text())["safety_stop"])
    assert state["bundle"] == str(d / "bundle" if row["accepted"] else tmp_path / "iter_000" / "bundle")


def test_runtime_overrides_are_refused_on_load_naming_the_key() -> None:
    """A deploy runtime setting that is not one, or out of its range, stops the session before any rollout."""
    for setting, expected in (("nope=1", "unknown key 'nope'"), ("safety.stale_ms=5000", "safety.stale_ms: expected a value > 0")):
        with pytest.raises(ConfigError, match=rf"runtime_overrides: .*go1.yaml: {expected}"):
            from_dict(SessionConfig, {"runtime_overrides": [setting]})


def test_kill_during_deploy_then_resume(walking_bundle: Path, tmp_path: Path, emulator_port: int) -> None:
    cmd = [sys.executable, "-m", "unio4.cli", "session", "--out", str(tmp_path), "--init", str(walking_bundle.parent / "bc.pt")]
    cmd += ["--no-prompt", "--set", f"session.robot=127.0.0.1:{emulator_port}", "--set", "session.local_port=0"]
    cmd += ["--set", "session.iterations=1", "--set", "session.check.enabled=false"]  # the check's walks: test_robot_check.py
    cmd += ["--set", f"session.runtime_overrides=[{STALL_SLACK}]"]
    for setting in ("rollouts=1", "steps=150", "critic_warmup_epochs=20", "gate.num_envs=2", "gate.seconds=2", "gate.max_lin_vel_error=1"):
        cmd += ["--set", f"session.{setting}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    chunk = tmp_path / "iter_001" / "run_0"
    deadline = time.monotonic() + 120
    while not list(chunk.glob("chunk_*.npz")):  # the deploy is logging: kill the session there
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    subprocess.run(["pkill", "-9", "-f", "--", f"--out {chunk}"], check=False)  # the deploy child dies with the session
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["phase"] == "deploy"
    # Resume with no settings at all: the session's own (overrides included) are stored beside its state.
    resume = [sys.executable, "-m", "unio4.cli", "session", "--out", str(tmp_path), "--no-prompt"]
    result = subprocess.run(resume, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "resuming" in result.stdout and "current bundle:" in result.stdout
    assert (tmp_path / "iter_001" / "run_0.interrupted").is_dir() and (tmp_path / "iter_001" / "run_0" / "summary.yaml").is_file()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["phase"] == "done" and state["rows"][0]["steps"] == 150  # the stored steps=150, not the default
    stored = yaml.safe_load((tmp_path / "session.yaml").read_text())
    assert stored["robot"] == f"127.0.0.1:{emulator_port}" and stored["prompt"] is True  # --no-prompt is per run


def test_min_std_widens_exploration_on_the_robot_and_keeps_the_mean(walking_bundle: Path, tmp_path: Path) -> None:
    """With ``min_std`` the session's first bundle explores at std >= min_std; its mean is the checkpoint's."""
    import dataclasses

    import torch

    from unio4.deploy.bundle import load_bundle
    from unio4.learning.checkpoint import load_checkpoint
    from unio4.learning.export import actor_from_checkpoint

    original = actor_from_checkpoint(load_checkpoint(walking_bundle.parent / "bc.pt"), "bc.pt")
    obs = torch.randn(32, original.obs_dim)
    with torch.no_grad():
        m0, s0 = original(obs)
    min_std = min(0.9, 1.2 * float(s0.exp().max()))  # above every std the checkpoint alone explores with
    cfg = dataclasses.replace(small_config(9, iterations=1), min_std=min_std)
    Session(tmp_path, cfg, load_task_config("go1_flat")).start(walking_bundle.parent / "bc.pt")
    mean, log_std = load_bundle(tmp_path / "iter_000" / "bundle", robot=None).infer_batch(obs.numpy())
    torch.testing.assert_close(torch.from_numpy(mean), m0, atol=1e-5, rtol=1e-5)
    assert float(torch.from_numpy(log_std).exp().min()) >= min_std - 1e-5
    # A floor the checkpoint already has (e.g. from fine-tuning with min_std) is kept, never lowered.
    bc = walking_bundle.parent / "bc.pt"
    own_floor = math.exp(actor_network(load_checkpoint(bc)).log_std_min)
    Session(tmp_path / "own", dataclasses.replace(cfg, min_std=own_floor), load_task_config("go1_flat")).start(bc)
    assert (tmp_path / "own" / "iter_000" / "checkpoint.pt").read_bytes() == bc.read_bytes()


def test_a_start_bundle_that_fails_the_gate_is_refused_before_the_robot_moves(walking_bundle: Path, tmp_path: Path) -> None:
    """``--init BUNDLE`` (its checkpoint.pt) with an impossible gate floor: one line, exit 2, no deploy and no
    session left behind (no robot at that address: the gate refuses before anything would connect)."""
    cmd = [sys.executable, "-m", "unio4.cli", "session", "--out", str(tmp_path), "--init", str(walking_bundle), "--no-prompt"]
    cmd += ["--set", "session.robot=127.0.0.1:9", "--set", "session.gate.num_envs=2", "--set", "session.gate.seconds=1"]
    cmd += ["--set", "session.gate.max_lin_vel_error=0.001"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("pybullet build time")]  # pybullet's own banner
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("unio4: error: ") and "start bundle fails the gate" in lines[0]
    assert str(tmp_path / "iter_000" / "bundle") in lines[0] and "lin-vel error" in lines[0] and "session.gate" in lines[0]
    assert not (tmp_path / "state.json").exists() and not (tmp_path / "iter_001").exists()  # nothing to resume, nothing deployed


def test_session_preset_is_the_code_default() -> None:
    """``unio4 session`` (configs/session/go1.yaml) and ``Session`` from Python run the same settings."""
    assert load(SessionConfig, resolve_config_path("go1", "session")) == SessionConfig()


def test_the_robot_time_budget_ends_a_session_between_rollouts(walking_bundle: Path, tmp_path: Path, emulator_port: int) -> None:
    """Three iterations of three 2 s rollouts asked, 0.12 robot-minutes allowed: one rollout (about 5 s with the
    stand-up and the damping hold) fits, the second would not; that iteration finishes and the session ends."""
    cfg = dataclasses.replace(small_config(emulator_port, iterations=3), rollouts=3, steps=100, max_robot_minutes=0.12)
    session = Session(tmp_path, cfg, load_task_config("go1_flat"))
    session.start(walking_bundle.parent / "bc.pt")
    rows = session.run()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["budget_spent"] and [r["iteration"] for r in rows] == [1]
    assert [p.name for p in (tmp_path / "iter_001").glob("run_*")] == ["run_0"]
    assert 2.0 < state["robot_seconds"] < 7.2 and rows[0]["robot_minutes"] == pytest.approx(state["robot_seconds"] / 60)


def test_a_new_session_fine_tunes_on_the_task_its_checkpoint_was_trained_on(tmp_path: Path) -> None:
    """No ``--task``: the start checkpoint's own task (rewards and randomisation that shaped its gait), with the
    ``--set task.*`` overrides on top; a checkpoint that records no task gets ``go1_flat``."""
    trained = load_task_config("go1_walk_well_tight")
    state = {"actor": {}, "task_config": to_dict(trained)}
    save_checkpoint(tmp_path / "own.pt", state)
    task = start_task(tmp_path / "own.pt", ["rewards.tracking_sigma=0.05"])
    assert task == dataclasses.replace(trained, rewards=dataclasses.replace(trained.rewards, tracking_sigma=0.05))
    assert task.rewards.weights["link_collision"] == trained.rewards.weights["link_collision"] != 0
    save_checkpoint(tmp_path / "bare.pt", {"actor": {}})
    assert start_task(tmp_path / "bare.pt") == load_task_config("go1_flat")
    save_checkpoint(tmp_path / "bad.pt", {**state, "task_config": {**to_dict(trained), "action_clip": "far"}})
    with pytest.raises(ValueError, match=r"bad\.pt: task_config"):
        start_task(tmp_path / "bad.pt")


def test_a_bad_fine_tuning_override_fails_before_any_robot_time(tmp_path: Path) -> None:
    cfg = dataclasses.replace(small_config(1, iterations=1), update="identify", sim=SimFinetuneConfig(task_overrides=("rewards.nope=1",)))
    with pytest.raises(ValueError, match=r"session\.sim\.task_overrides"):
        Session(tmp_path, cfg, load_task_config("go1_flat"))


def test_a_rollout_that_ends_before_the_policy_runs_is_set_aside_and_tried_again(walking_bundle: Path, tmp_path: Path) -> None:
    """A robot whose state stops 1 s into every run (the stand-up): no policy step, no data. The
    rollout is set aside (``run_0.empty0``) and tried once more; the second such stop ends the session
    with the runtime's reason, before any update, and nothing is packed."""
    proc, port = spawn(["--lockstep", "--reset-per-run", "--freeze-at", "1.0"])
    try:
        session = Session(tmp_path, small_config(port, iterations=1), load_task_config("go1_flat"))
        session.start(walking_bundle.parent / "bc.pt")
        with pytest.raises(RuntimeError, match=r"two rollouts in a row ended before the policy ran.*stale state"):
            session.run()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    d = tmp_path / "iter_001"
    assert sorted(p.name for p in d.iterdir()) == ["run_0.empty0", "run_0.empty1"]
    assert json.loads((tmp_path / "state.json").read_text())["phase"] == "deploy"


def metrics(error: float, falls: float) -> dict[str, float]:
    return {"lin_vel_error": error, "falls_per_robot_minute": falls}


def test_gate_refuses_a_falling_bundle_even_when_the_current_one_falls_more() -> None:
    g = GateConfig(max_falls_per_minute=0.0, max_lin_vel_error=0.3)
    current = first = metrics(0.4, 27.0)
    reasons = gate_refusals(g, metrics(0.2, 18.0), current, first)
    assert reasons == ["falls 18.00 per robot-minute > 0"]
    assert gate_refusals(g, metrics(0.2, 0.0), current, first) == []  # better on both counts and within the floors


def test_gate_floors_and_no_worse_rules_each_say_why() -> None:
    g = GateConfig(max_falls_per_minute=0.5, max_lin_vel_error=0.3, max_tracking_increase=0.05, max_falls_increase=0.0)
    current, first = metrics(0.10, 0.0), metrics(0.12, 0.0)
    assert gate_refusals(g, metrics(0.14, 0.0), current, first) == []
    reasons = gate_refusals(g, metrics(0.16, 0.2), current, first)
    assert "lin-vel error 0.160 m/s vs the current bundle's 0.100 (more than 0.05 worse)" in reasons
    assert "falls 0.20 per robot-minute above the first bundle's 0.00" in reasons
    assert gate_refusals(g, metrics(0.35, 0.0), metrics(0.34, 0.0), metrics(0.34, 0.0)) == ["lin-vel error 0.350 m/s > 0.3"]


def test_identify_mode_gate_refuses_slower_walks_on_the_identified_robot() -> None:
    """The speed error of the identification walks, simulated on the identified robot: a new bundle
    that tracks the whole range as well but walks them worse than the current (or first) one by more
    than the allowance is refused; within it, it passes; PPO-mode metrics (no walks) are not judged."""
    g = GateConfig()
    current, first = {**metrics(0.10, 0.0), "walk_speed_error": 0.035}, {**metrics(0.19, 0.0), "walk_speed_error": 0.138}
    worse = gate_refusals(g, {**metrics(0.10, 0.0), "walk_speed_error": 0.105}, current, first)
    assert worse == ["speed error on the identified robot's walks 0.105 m/s vs the current bundle's 0.035 (more than 0.02 worse)"]
    assert gate_refusals(g, {**metrics(0.10, 0.0), "walk_speed_error": 0.05}, current, first) == []
    assert gate_refusals(g, metrics(0.10, 0.0), current, first) == []


def test_a_calibrated_bundle_is_gated_on_its_floors_and_falls_not_on_simulated_tracking() -> None:
    """A command calibration corrects what the identified robot in simulation misses, so there it tracks worse by
    design: with ``tracking=False`` the gate leaves the tracking comparisons to the robot's check and still refuses
    falls and the absolute lin-vel floor."""
    g = GateConfig()
    current = first = {**metrics(0.10, 0.0), "walk_speed_error": 0.024}
    calibrated = {**metrics(0.20, 0.0), "walk_speed_error": 0.128}
    assert len(gate_refusals(g, calibrated, current, first)) == 4  # lin-vel and walks, against current and first
    assert gate_refusals(g, calibrated, current, first, tracking=False) == []
    falling = {**metrics(0.20, 3.0), "walk_speed_error": 0.128}
    assert gate_refusals(g, falling, current, first, tracking=False)[0] == "falls 3.00 per robot-minute > 0"
    assert gate_refusals(g, {**metrics(0.35, 0.0)}, current, first, tracking=False) == ["lin-vel error 0.350 m/s > 0.3"]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([{"event": "connected", "time": 1000.0}, {"event": "damping", "time": 1012.0}], 13.0),  # connect -> end
        ([], 15.0),  # no connect time logged: the wall time
        ([{"event": "connected", "time": 900.0}], 15.0),  # a clock before the rollout started: at most its wall time
        ([{"event": "connected", "time": 1014.0}, {"event": "connected", "time": 1001.0}], 0.0),  # the first connect
        ([{"event": "connected", "time": "soon"}], 15.0),  # not a time
    ],
)
def test_robot_time_starts_when_the_runtime_connects(tmp_path: Path, events: list[dict], expected: float) -> None:
    """A session's robot minutes count the time the robot ran, from the runtime's connect to the rollout's end (here
    at 1013.0 after 15 s of wall time), not the process's start-up before it; a log without a usable connect time
    costs the wall time."""
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert time_on_robot(tmp_path, 15.0, 1013.0) == pytest.approx(expected)
