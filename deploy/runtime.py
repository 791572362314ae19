"""The fixed-rate deploy runtime: a policy bundle driving a Go1 through the SDK, safely.

One loop on absolute deadlines at the SDK rate (500 Hz) does the I/O every tick and runs the
policy every ``policy_dt / sdk_dt`` ticks (50 Hz), holding the latest PD target in between. Phases:

1. connect: damping commands until the first LowState arrives (the robot answers commands);
2. stand up: PD targets interpolate from the measured pose to the default pose over ``startup_s``;
3. policy: observation from the LowState through the bundle's spec (the same code as the
   simulator), onnxruntime, ``target = q_default + scale * clip(action)``, the safety layer;
4. stop: when the duration is over, the policy runs ``stop_s`` more at a zero command (not logged),
   so that the robot stands still before it goes limp (damping at walking speed rolls it over);
5. damping (Kp 0, Kd ``damping_kd``): on any safety trigger, on SIGINT/SIGTERM and at the end of
   the run, held for ``damping_hold_s`` before exit. Damping latches: nothing leaves it.

Deterministic mode sends the action mean; explore mode samples from the policy's Gaussian with a
seeded generator and logs the log-probability, for on-robot fine-tuning. Replay mode
(:class:`ReplaySource`, ``unio4 replay --mode robot``) sends a logged run's joint targets instead
of a policy's, through the same stand-up, safety layer and damping, at scaled-down gains. numpy +
onnxruntime + the SDK only: this module never imports torch.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from unio4.configs.loader import bounded, check_fields, to_dict
from unio4.deploy.bundle import Bundle
from unio4.deploy.estop import EStopConfig, SerialEStop
from unio4.deploy.manifest import Manifest
from unio4.deploy.observations import observation_frame, push_history, start_history
from unio4.deploy.protocol import LowState
from unio4.deploy.robot_io import SdkLink, UnsafeCommand
from unio4.deploy.rollout_log import RolloutLog
from unio4.deploy.safety import RobotLimits, SafetyConfig, SafetyMonitor, clip_targets, rate_limit
from unio4.deploy.timing import DeadlineClock, LatencyStats, set_realtime_priority
from unio4.deploy.tracker import TrackerConfig, TrackerLink
from unio4.robots.description import load_robot

if TYPE_CHECKING:  # the streamer (and rerun behind it) is imported only when --rerun asks for it
    from unio4.deploy.rerun_stream import RerunStreamer

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class RuntimeConfig:
    """What a deploy run does around the policy: stand-up, timeouts, logging, command source, priority, safety, e-stop."""

    startup_s: float = bounded(2.0, gt=0, le=60)  # stand-up interpolation to the default pose
    connect_timeout_s: float = bounded(2.0, gt=0, le=60)  # no LowState by then: refuse to run
    damping_hold_s: float = bounded(1.0, ge=0, le=60)  # damping sent this long before the process exits
    # after the duration, the policy at a zero command this long before damping: a Go1 damped while walking
    # sideways at 0.6 m/s rolls over (docs/real-go1.md, "What the runtime does"); a fault or a signal damps at once
    stop_s: float = bounded(1.0, ge=0, le=10)
    chunk_steps: int = bounded(50, ge=1, le=100_000)  # policy steps per log chunk (1 s at 50 Hz)
    command: tuple[float, float, float] | None = bounded(None, ge=-5, le=5)  # fixed (vx, vy, yaw rate); None: the remote's sticks
    # Run the network once in the tick before each policy tick, after that tick's send: weights idle
    # for 20 ms fall out of the CPU caches, and a cold inference is several times slower
    # (docs/benchmarks/deploy.md, "Deploy runtime timing").
    warm_cache: bool = True
    # SCHED_FIFO priority of the control thread (1-99; 0 keeps the default scheduler). Needs root or
    # CAP_SYS_NICE; without them the run goes on with a warning. It cuts the I/O loop's wake-up jitter
    # (docs/benchmarks/deploy.md, "Deploy runtime timing").
    realtime_priority: int = bounded(0, ge=0, le=99)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    estop: EStopConfig = field(default_factory=EStopConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)  # a tracking camera's velocity, logged beside odometry

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML


@dataclass
class RunResult:
    """How a run ended, its policy steps and its timing statistics."""

    reason: str  # why the policy phase ended: "duration", "SIGINT", or the safety trigger
    safety_stop: bool
    policy_steps: int
    timing: dict[str, Any]


@dataclass(frozen=True)
class ReplaySource:
    """A logged run's joint targets, sent instead of a policy's (one row per policy step)."""

    targets: np.ndarray  # (T, num_joints), SDK order
    manifest: Manifest  # the logged run's bundle manifest (checked): gains, rates, joint limits
    gain_scale: float = bounded(0.6, gt=0, le=1)  # Kp and Kd multiplier: softer than the logged run

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges
        # an array's shape and values: no per-field range expresses them (targets is no config number)
        if self.targets.ndim != 2 or len(self.targets) == 0 or not np.all(np.isfinite(self.targets)):
            raise ValueError(f"replay targets: expected a finite (T > 0, joints) array, got shape {self.targets.shape}")


class PolicySpec:
    """A checked manifest as the runtime needs it: observation, action mapping, gains, rates, limits.

    The joint and torque limits the targets are clipped to are the robot description's (a manifest
    may only be tighter, and :func:`unio4.deploy.manifest.check_against_robot` has made sure of it).
    """

    def __init__(self, m: Manifest) -> None:
        robot = load_robot(m.robot)
        self.obs_cfg = m.observation.config
        self.default_pos = np.asarray(m.joints.default_pos, dtype=np.float64)
        description = RobotLimits.of(robot)
        self.limits = replace(
            description,
            lower=np.maximum(description.lower, m.joints.lower),
            upper=np.minimum(description.upper, m.joints.upper),
            torque=np.minimum(description.torque, m.joints.torque_limit),
        )
        self.action_scale = np.asarray(m.action.scales, dtype=np.float64)
        self.action_clip = m.action.clip
        self.kp, self.kd, self.damping_kd = m.control.kp, m.control.kd, m.control.damping_kd
        self.sdk_dt = m.control.sdk_dt
        self.decimation = m.control.decimation
        self.command_max = m.commands.max_abs

    def targets(self, action: np.ndarray) -> np.ndarray:
        """PD targets ``q_default + scale * clip(action)`` of an action."""
        return self.default_pos + self.action_scale * np.clip(action, -self.action_clip, self.action_clip)


def command_from_remote(state: LowState, command_max: np.ndarray) -> np.ndarray | None:
    """Left stick: forward/sideways velocity; right stick x: yaw rate (left is positive).

    None when a stick reads non-finite or beyond full deflection (a broken remote or a forged packet).
    """
    r = state.remote
    sticks = np.array([r.ly, -r.lx, -r.rx])
    if not np.all(np.isfinite(sticks)) or np.any(np.abs(sticks) > 1.0 + 1e-3):
        return None
    return sticks.clip(-1.0, 1.0) * command_max


@dataclass(slots=True)
class _PolicyState:
    """What the policy phase carries from one policy step to the next, and its timing samples."""

    last_action: np.ndarray  # clipped, as the next observation sees it
    history: np.ndarray | None = None  # observation frames; None until the first policy step
    steps: int = 0
    inference: list[float] = field(default_factory=list)  # s per network call
    policy_times: list[float] = field(default_factory=list)  # clock time of each policy step


class _EndRun(Exception):
    """A policy step ends the run (replay over, non-finite action); the loop goes to damping with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Runtime:
    """Runs one bundle on one robot; see the module docstring."""

    def __init__(
        self,
        bundle: Bundle | None,
        link: SdkLink,
        cfg: RuntimeConfig,
        log: RolloutLog | None = None,
        explore: bool = False,
        seed: int = 0,
        replay: ReplaySource | None = None,
        stream: RerunStreamer | None = None,
    ) -> None:
        self.bundle, self.link, self.cfg, self.log, self.replay = bundle, link, cfg, log, replay
        self.stream = stream  # a copy of each step and event for a Rerun viewer; put() never blocks
        if bundle is not None and replay is None:
            self.spec = PolicySpec(bundle.spec)
        elif replay is not None and bundle is None:
            self.spec = PolicySpec(replay.manifest)
            if replay.targets.shape[1] != len(self.spec.default_pos):
                raise ValueError(f"replay targets have {replay.targets.shape[1]} joints, the manifest {len(self.spec.default_pos)}")
        else:
            raise ValueError("Runtime: give a bundle (policy) or a replay source, not both")
        scale = replay.gain_scale if replay is not None else 1.0
        self.kp, self.kd = self.spec.kp * scale, self.spec.kd * scale
        self.explore = explore
        self.rng = np.random.default_rng(seed)
        self.safety = SafetyMonitor(cfg.safety, self.spec.limits)
        self.tracker: TrackerLink | None = None
        self._signal: str | None = None

    # ---- the loop ----
    def run(self, duration_s: float) -> RunResult:
        """Stand up, run the policy ``duration_s`` seconds, end in damping; never raises on a fault."""
        self._catch_signals()
        self._set_priority()
        clock = DeadlineClock(self.spec.sdk_dt)
        if self.cfg.tracker.address is not None:
            self.tracker = TrackerLink(self.cfg.tracker, time.perf_counter())
        state = self._connect(clock)
        connect_fault = self.safety.accept(state, time.perf_counter())
        estop = SerialEStop(self.cfg.estop, time.perf_counter()) if self.cfg.estop.url else None
        self._event("connected", tick=state.tick)
        policy = _PolicyState(last_action=np.zeros_like(self.spec.default_pos))
        reason, state = self._control_loop(clock, state, connect_fault, estop, policy, duration_s)
        safety_stop = reason not in ("duration", "replay finished", "SIGINT", "SIGTERM")
        self._end_in_damping(clock, estop, reason, safety_stop, state)
        if self.tracker is not None:
            self.tracker.close()
        return RunResult(reason, safety_stop, policy.steps, self._timing(clock, policy))

    def _catch_signals(self) -> None:
        """SIGINT/SIGTERM end the run in damping (only the main thread may install handlers)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._on_signal)

    def _control_loop(
        self,
        clock: DeadlineClock,
        state: LowState,
        connect_fault: str | None,
        estop: SerialEStop | None,
        policy: _PolicyState,
        duration_s: float,
    ) -> tuple[str, LowState]:
        """Stand-up and policy ticks at the SDK rate until the duration or a fault: why it ended, and the last fresh state."""
        spec, cfg = self.spec, self.cfg
        q_start = state.q.copy()
        raw_target = q_start.copy()  # the policy's (rate-limited) target; what is sent is clipped per tick
        startup_ticks = max(1, round(cfg.startup_s / spec.sdk_dt))
        policy_ticks = round(duration_s / spec.sdk_dt)
        stop_ticks = round(cfg.stop_s / spec.sdk_dt) if self.replay is None else 0  # a replay has no policy to stop with
        fixed_command = None if cfg.command is None else np.asarray(cfg.command, dtype=np.float64)
        remote_command = command_from_remote(state, spec.command_max) if fixed_command is None else fixed_command
        if connect_fault is None and remote_command is None:
            connect_fault = f"remote sticks out of range: {state.remote}"
        if connect_fault is not None:  # the stand-up would start from this state: never use it
            return f"connect state: {connect_fault}", state
        warm = self.bundle if cfg.warm_cache else None  # decided once: the warm-up check runs every tick
        tick = 0
        while tick < startup_ticks + policy_ticks + stop_ticks:  # the tick body stays inline: it runs every sdk_dt
            now = clock.wait()
            received = self.link.receive()
            fault = self._signal or self.safety.check(received, now) or (estop.poll(now) if estop else None)
            if fault is not None:
                return fault, state
            if self.safety.fresh:  # else: a repeated or replayed packet; keep acting on the last fresh state
                state = received
                remote_command = command_from_remote(state, spec.command_max) if cfg.command is None else fixed_command
                if remote_command is None:  # checked every tick, stand-up included: a broken remote stops the run
                    return f"remote sticks out of range: {state.remote}", state
            if tick < startup_ticks:
                alpha = (tick + 1) / startup_ticks
                raw_target = rate_limit(cfg.safety, (1 - alpha) * q_start + alpha * spec.default_pos, raw_target, spec.sdk_dt)
                if tick + 1 == startup_ticks:
                    self._event("policy_start", tick=state.tick)
            elif (tick - startup_ticks) % spec.decimation == 0:
                try:
                    raw_target = self._policy_tick(policy, state, remote_command, now, tick - startup_ticks, policy_ticks, raw_target)
                except _EndRun as end:
                    return end.reason, state
            target = clip_targets(cfg.safety, spec.limits, raw_target, state.q, state.dq, self.kp, self.kd)
            try:
                self.link.send(target, self.kp, self.kd)
            except UnsafeCommand as exc:  # not sent; the link sent damping instead
                return f"unsafe command refused: {exc}", state
            last_io_tick = (tick - startup_ticks) % spec.decimation == spec.decimation - 1
            if warm is not None and policy.history is not None and last_io_tick:
                warm.infer(policy.history.astype(np.float32))  # after the send: off the critical path
            tick += 1
        return "duration", state

    def _policy_step(
        self, policy: _PolicyState, state: LowState, command: np.ndarray | None, now: float, t_policy: float, raw_target: np.ndarray
    ) -> np.ndarray:
        """Observe, act (policy or replay), rate-limit and log: the new raw target; :class:`_EndRun` ends the run."""
        spec = self.spec
        assert command is not None  # checked on every fresh state
        obs = self._observe(policy, state, command, t_policy)
        policy.policy_times.append(now)
        if self.replay is not None:
            if policy.steps == len(self.replay.targets):
                raise _EndRun("replay finished")
            mean = (self.replay.targets[policy.steps] - spec.default_pos) / spec.action_scale  # the logged action
            action, log_std, log_prob = mean, np.full_like(mean, -np.inf), 0.0
        else:
            assert self.bundle is not None
            t0 = time.perf_counter()
            mean, log_std = self.bundle.infer(obs)
            policy.inference.append(time.perf_counter() - t0)
            action, log_prob = self._act(mean.astype(np.float64), log_std.astype(np.float64))
        raw_target = self._next_target(policy, action, raw_target)
        policy.steps += 1
        if self.log is not None or self.stream is not None:
            record = self._record(t_policy, state, obs, action, mean, log_std, log_prob, command, raw_target)
            if self.tracker is not None:
                reading = self.tracker.poll(now).astype(np.float32)
                record["tracker_lin_vel"], record["tracker_ang_vel"] = reading[:3], reading[3:]
            if self.log is not None:
                self.log.append(record)
            if self.stream is not None:
                self.stream.put(record)  # a full queue drops the frame; never waits
        return raw_target

    def _policy_tick(
        self,
        policy: _PolicyState,
        state: LowState,
        command: np.ndarray | None,
        now: float,
        tick: int,
        policy_ticks: int,
        raw_target: np.ndarray,
    ) -> np.ndarray:
        """The policy tick ``tick`` ticks after the stand-up: a policy step, or past ``policy_ticks`` a stop step."""
        t_policy = tick * self.spec.sdk_dt
        if tick < policy_ticks:
            return self._policy_step(policy, state, command, now, t_policy, raw_target)
        if tick == policy_ticks:
            self._event("stopping", tick=state.tick)
        return self._stop_step(policy, state, t_policy, raw_target)

    def _stop_step(self, policy: _PolicyState, state: LowState, t_policy: float, raw_target: np.ndarray) -> np.ndarray:
        """A step of the stop phase: the policy's mean action at a zero command, rate-limited; not logged,
        not counted (the run's data ends with the duration).
        """
        assert self.bundle is not None  # a replay has no stop phase
        obs = self._observe(policy, state, np.zeros_like(self.spec.command_max), t_policy)
        return self._next_target(policy, self.bundle.infer(obs)[0].astype(np.float64), raw_target)

    def _next_target(self, policy: _PolicyState, action: np.ndarray, raw_target: np.ndarray) -> np.ndarray:
        """The rate-limited PD target of an action, which becomes the last action; a non-finite one ends the run."""
        spec = self.spec
        if not np.all(np.isfinite(action)):
            raise _EndRun("non-finite policy output")
        policy.last_action = np.clip(action, -spec.action_clip, spec.action_clip)
        return rate_limit(self.cfg.safety, spec.targets(action), raw_target, spec.sdk_dt * spec.decimation)

    def _observe(self, policy: _PolicyState, state: LowState, command: np.ndarray, t_policy: float) -> np.ndarray:
        """The policy's float32 input: this state's observation frame pushed onto the history (the simulator's code)."""
        spec = self.spec
        frame = observation_frame(
            np,
            spec.obs_cfg,
            state.quaternion,
            state.gyroscope,
            state.q,
            state.dq,
            command,
            policy.last_action,
            spec.default_pos,
            np.float64(t_policy),
        )
        history = policy.history
        policy.history = start_history(np, frame, spec.obs_cfg.history_length) if history is None else push_history(np, history, frame)
        return policy.history.astype(np.float32)

    def _end_in_damping(self, clock: DeadlineClock, estop: SerialEStop | None, reason: str, safety_stop: bool, state: LowState) -> None:
        """Log why the run ended, hold damping for ``damping_hold_s``, release the e-stop."""
        if self.log is not None and safety_stop:
            self._event("fault", reason=reason)
        self._event("damping", reason=reason, safety_stop=safety_stop, tick=int(state.tick))
        self._hold_damping(clock)
        if estop is not None:
            estop.close()

    def _timing(self, clock: DeadlineClock, policy: _PolicyState) -> dict[str, Any]:
        """The run's I/O, policy-period and inference timing statistics, as ``summary.yaml`` records them."""
        spec = self.spec
        policy_times, inference = policy.policy_times, policy.inference
        io_periods = np.diff(np.asarray(clock.errors)) if len(clock.errors) > 1 else np.zeros(0)
        return {
            "io_period_error": LatencyStats.of(io_periods).__dict__,
            "io_wake_error": LatencyStats.of(clock.errors).__dict__,
            "policy_period_error": LatencyStats.of(np.diff(policy_times) - spec.sdk_dt * spec.decimation).__dict__,
            "inference": LatencyStats.of(inference).__dict__,
            "io_late_ticks": clock.late_ticks,
            "io_missed_ticks": clock.missed_ticks,
            "policy_missed_deadlines": int(np.sum(np.diff(policy_times) > 2 * spec.sdk_dt * spec.decimation))
            if len(policy_times) > 1
            else 0,
            **({"tracker": dict(self.tracker.stats)} if self.tracker is not None else {}),
        }

    def _set_priority(self) -> None:
        """Real-time scheduling for this thread only (the log writer stays below it)."""
        failure = set_realtime_priority(self.cfg.realtime_priority)
        if failure is not None:
            print(f"deploy: warning: no real-time priority ({failure}); timing jitter will be higher", file=sys.stderr)
            self._event("warning", message=f"no real-time priority: {failure}")

    def _connect(self, clock: DeadlineClock) -> LowState:
        """Damping commands until a LowState arrives (the robot answers once it hears commands)."""
        for _ in range(max(1, round(self.cfg.connect_timeout_s / self.spec.sdk_dt))):
            clock.wait()
            self.link.send_damping(self.spec.damping_kd)
            state = self.link.receive()
            if state.tick != 0:  # the SDK's state before any packet arrived is all zeros
                return state
        raise ConnectionError(
            f"no LowState within {self.cfg.connect_timeout_s:.1f} s: is the robot on and in low-level mode (L2+A, L2+B, L1+L2+START), "
            "or `unio4 emulate` running there?"
        )

    def _hold_damping(self, clock: DeadlineClock) -> None:
        for _ in range(round(self.cfg.damping_hold_s / self.spec.sdk_dt)):
            clock.wait()
            self.link.send_damping(self.spec.damping_kd)
            self.link.receive()

    def _act(self, mean: np.ndarray, log_std: np.ndarray) -> tuple[np.ndarray, float]:
        """The action sent and its log-density under the policy (the mean's, in deterministic mode)."""
        noise = self.rng.standard_normal(mean.shape) if self.explore else np.zeros_like(mean)
        action = mean + np.exp(log_std) * noise
        log_prob = float(-0.5 * np.sum(noise**2) - np.sum(log_std) - 0.5 * len(mean) * LOG_2PI)
        return action, log_prob

    def _record(
        self,
        t: float,
        s: LowState,
        obs: np.ndarray,
        action: np.ndarray,
        mean: np.ndarray,
        log_std: np.ndarray,
        log_prob: float,
        command: np.ndarray,
        target: np.ndarray,
    ) -> dict[str, Any]:
        f32 = np.float32
        return {
            "time": t,
            "tick": s.tick,
            "observation": obs,
            "action": action.astype(f32),
            "action_mean": mean.astype(f32),
            "action_log_std": log_std.astype(f32),
            "log_prob": log_prob,
            "command": command.astype(f32),
            "joint_target": target.astype(f32),
            "joint_pos": s.q.astype(f32),
            "joint_vel": s.dq.astype(f32),
            "joint_torque": s.tau_est.astype(f32),
            "base_quat": s.quaternion.astype(f32),
            "gyro": s.gyroscope.astype(f32),
            "accelerometer": s.accelerometer.astype(f32),
            "foot_force": s.foot_force.astype(f32),
        }

    def _event(self, kind: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.event(kind, time=time.time(), **fields)
        if self.stream is not None:
            self.stream.event(kind, **fields)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signal = signal.Signals(signum).name


def run_meta(bundle: Bundle, cfg: RuntimeConfig, robot_addr: str, explore: bool, seed: int) -> dict[str, Any]:
    """What ``meta.yaml`` of a rollout log records about the run."""
    return {
        "source": "robot",
        "robot_address": robot_addr,
        "bundle": str(Path(bundle.path).resolve()),
        "bundle_sha256": bundle.sha256,  # the bundle's identity: the sha256 of its SHA256SUMS
        "policy_sha256": bundle.spec.files[bundle.spec.policy.file],
        "mode": "explore" if explore else "deterministic",
        "seed": seed,
        "manifest": bundle.manifest,
        "runtime": {
            "startup_s": cfg.startup_s,
            "stop_s": cfg.stop_s,
            "command": list(cfg.command) if cfg.command else "remote",
            "safety": to_dict(cfg.safety),  # the limits this run was stopped by
        },
    }


def run_bundle(
    bundle: Bundle,
    host: str,
    port: int,
    cfg: RuntimeConfig,
    duration_s: float,
    local_port: int = 0,
    log_dir: str | Path | None = None,
    explore: bool = False,
    seed: int = 0,
    stream: RerunStreamer | None = None,
) -> RunResult:
    """Connect to ``host:port`` through the SDK, run, and close the rollout log (when one is asked for)
    and the Rerun stream (when given; its frame counts go into ``summary.yaml``).
    """
    address = f"{host}:{port}"
    log = RolloutLog(log_dir, run_meta(bundle, cfg, address, explore, seed), cfg.chunk_steps) if log_dir is not None else None
    link = SdkLink(host, port, RobotLimits.of(load_robot(bundle.spec.robot)), local_port)
    try:
        result = Runtime(bundle, link, cfg, log=log, explore=explore, seed=seed, stream=stream).run(duration_s)
    except ConnectionError as exc:  # nothing ran: no state came back
        raise ConnectionError(f"robot unreachable at {address}: {exc}") from None
    finally:
        link.close()
        if stream is not None:
            stream.close()
    if log is not None:
        summary = {"reason": result.reason, "safety_stop": result.safety_stop, "policy_steps": result.policy_steps, "timing": result.timing}
        if stream is not None:
            summary["rerun"] = dict(stream.stats.__dict__)
        log.close(summary)
    return result
