"""Fuzzing the robot side with hostile and broken input, over the real SDK on UDP loopback.

- A hostile Go1 answers the deploy runtime's LowCmds with LowStates (valid CRC) that go bad at a
  random tick: NaN/Inf, huge values, a zero or scaled quaternion, random bytes, replayed or
  reordered old packets, frozen sensors, NaN remote sticks, the connect state itself. Every LowCmd
  the runtime sends is decoded and checked: nothing non-finite or out of range ever leaves with
  Kp > 0, the run ends in damping, and a corrupt state stops the policy within three ticks.
- Hostile LowCmds (valid CRC, NaN/Inf targets, huge gains, random bytes) against ``unio4 emulate``:
  every LowState it answers with is finite.

Counts (states sent, commands checked, faults raised) are printed at the end of each fuzz test.
"""

from __future__ import annotations

import math
import select
import socket
import threading
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unio4.deploy import protocol
from unio4.deploy.bundle import load_bundle
from unio4.deploy.robot_io import SdkLink
from unio4.deploy.runtime import Runtime, RuntimeConfig
from unio4.deploy.safety import RobotLimits, SafetyConfig
from unio4.robots.description import RobotDescription, load_robot
from unio4.sim.emulator import Emulator, EmulatorConfig

GO1 = load_robot("go1")
LIMITS = RobotLimits.of(GO1)
COUNTS: Counter[str] = Counter()
FAST = RuntimeConfig(startup_s=0.1, damping_hold_s=0.04, connect_timeout_s=1.0, warm_cache=False, safety=SafetyConfig(stale_ms=50.0))
RUN_S = 0.3  # of policy control after the stand-up
TICKS = int((FAST.startup_s + RUN_S + FAST.damping_hold_s) / 0.002)


def good_state(k: int) -> protocol.LowState:
    """A sane standing Go1 at tick k + 1: joints near the default pose, moving a little every tick."""
    wobble = 1e-3 * math.sin(0.3 * k)
    return protocol.LowState(
        tick=k + 1,
        quaternion=np.array([1.0, 0.0, 0.0, 0.0]),
        gyroscope=np.array([wobble, 0.0, 0.0]),
        accelerometer=np.array([0.0, 0.0, 9.81 + wobble]),
        rpy=np.zeros(3),
        q=GO1.default_joint_pos + wobble,
        dq=np.full(12, wobble),
        tau_est=np.zeros(12),
        foot_force=np.full(4, 30.0),
    )


def corrupt(kind: str, state: protocol.LowState, rng: np.random.Generator) -> bytes | protocol.LowState:
    """``state`` made hostile in one of the ways a broken link or an attacker would."""
    field = str(rng.choice(["q", "dq", "quaternion", "gyroscope", "accelerometer", "rpy"]))
    values = getattr(state, field)
    j = int(rng.integers(len(values)))
    if kind == "nan":
        values[j] = np.nan
    elif kind == "inf":
        values[j] = rng.choice([np.inf, -np.inf])
    elif kind == "huge":
        values[j] = float(rng.choice([1e30, -1e30, 1e6, 3e3]))
    elif kind == "zero_quaternion":
        state.quaternion[:] = 0.0
    elif kind == "scaled_quaternion":
        state.quaternion *= float(rng.choice([0.5, 2.0, 1e-6]))
    elif kind == "remote_nan":
        raw = bytearray(protocol.encode_remote(protocol.Remote()))
        raw[4:8] = np.array([np.nan], "<f4").tobytes()  # lx
        state.wireless_remote = bytes(raw)
    elif kind == "random_bytes":  # every field random, CRC valid
        record = np.frombuffer(rng.bytes(protocol.LOW_STATE_SIZE), dtype=protocol.LOW_STATE).copy()
        record["head"], record["levelFlag"] = protocol.HEAD, protocol.LOW_LEVEL
        return protocol._seal(record)
    elif kind == "bad_crc":
        raw = bytearray(protocol.encode_low_state(state))
        raw[-1] ^= 0xFF
        return bytes(raw)
    return state


class HostileGo1:
    """Answers every LowCmd with ``script(k)`` (k: commands so far) and keeps every LowCmd it got.

    ``received[k]``: how many commands the runtime had sent when answer k went out, those still queued in the
    socket included (a stalled machine holds up this thread while the runtime's ticks go on)."""

    def __init__(self, script: Callable[[int], bytes | protocol.LowState | None]) -> None:
        self.script = script
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.02)
        self.port = self.sock.getsockname()[1]
        self.commands: list[protocol.LowCmd] = []
        self.received: list[int] = []
        self.sent = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        queued: deque[tuple[bytes, Any]] = deque()
        while not self._stop:
            if not queued:
                try:
                    queued.append(self.sock.recvfrom(4096))
                except TimeoutError:
                    continue
            self._take_queued(queued)
            datagram, sender = queued.popleft()
            self.commands.append(protocol.decode_low_cmd(datagram))  # the runtime only sends well-formed packets
            self.received.append(len(self.commands) + len(queued))
            answer = self.script(len(self.commands) - 1)
            if answer is not None:
                self.sock.sendto(answer if isinstance(answer, bytes) else protocol.encode_low_state(answer), sender)
                self.sent += 1

    def _take_queued(self, queued: deque[tuple[bytes, Any]]) -> None:
        """Every command already in the socket, to be answered one by one in order (select: a socket with a
        timeout waits for one even when told not to)."""
        while select.select([self.sock], [], [], 0.0)[0]:
            queued.append(self.sock.recvfrom(4096))

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        self.sock.close()


def run_against(bundle_dir: Path, script: Callable[[int], bytes | protocol.LowState | None], command: tuple[float, float, float] | None):
    """Deploy a bundle against a :class:`HostileGo1`; returns the run's result, the commands it sent and the robot's
    :attr:`HostileGo1.received` counts."""
    robot = HostileGo1(script)
    try:
        cfg = RuntimeConfig(**{**FAST.__dict__, "command": command})
        link = SdkLink("127.0.0.1", robot.port, LIMITS, local_port=0)
        result = Runtime(load_bundle(bundle_dir), link, cfg).run(RUN_S)
    finally:
        robot.close()
    COUNTS["states sent"] += robot.sent
    COUNTS["runs"] += 1
    return result, robot.commands, robot.received


def assert_every_command_safe(commands: list[protocol.LowCmd]) -> None:
    """Nothing non-finite or out of range left with Kp > 0; the gains never exceed the description's."""
    assert commands, "the runtime sent nothing"
    for cmd in commands:
        COUNTS["commands checked"] += 1
        assert np.all(cmd.kp <= LIMITS.max_kp) and np.all(cmd.kd <= LIMITS.max_kd)
        assert np.all(cmd.tau == 0) and np.all(cmd.dq == 0)
        servo = cmd.kp > 0
        if servo.any():
            assert np.all(np.isfinite(cmd.q[servo])), cmd.q
            assert np.all(cmd.q[servo] >= LIMITS.lower[servo] - 1e-6) and np.all(cmd.q[servo] <= LIMITS.upper[servo] + 1e-6), cmd.q
        else:
            assert np.all(np.abs(cmd.q) >= protocol.POS_STOP * 0.5)  # damping: no position term at all


def assert_ends_in_damping(commands: list[protocol.LowCmd]) -> None:
    hold = int(FAST.damping_hold_s / 0.002) - 2
    assert all(np.all(c.kp == 0) and np.all(c.kd == GO1.control.damping_kd) for c in commands[-hold:])


KINDS = ["nan", "inf", "huge", "zero_quaternion", "scaled_quaternion", "random_bytes", "remote_nan"]


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), at=st.integers(0, 160), seed=st.integers(0, 2**31))
def corrupt_states_stop_the_policy_at_once(walking_bundle: Path, kind: str, at: int, seed: int) -> None:
    rng = np.random.default_rng(seed)

    def script(k: int) -> bytes | protocol.LowState:  # a broken sensor or an attacker: bad from `at` on
        state = good_state(k)
        return corrupt(kind, state, rng) if k >= at else state

    result, commands, received = run_against(walking_bundle, script, command=None)  # the remote's sticks are the command source
    assert_every_command_safe(commands)
    assert_ends_in_damping(commands)
    if kind == "random_bytes" and result.reason == "duration":
        pytest.skip("random bytes that happened to decode as a sane state")  # astronomically rare; keeps the property honest
    assert result.safety_stop, result.reason
    COUNTS["faults raised"] += 1
    # the state answering command k is read at tick k + 1 (k + 2 or 3 if the answer is late): no servo command after
    # that. Counted from the commands sent when the first bad state went out (k + 1 unless this process stalled).
    servo_after = [i for i, c in enumerate(commands) if i > received[at] + 2 and np.any(c.kp > 0)]
    assert not servo_after, (kind, at, result.reason, servo_after[:3])
    if kind not in ("random_bytes", "remote_nan"):
        assert "state" in result.reason, result.reason


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(["replay", "frozen", "bad_crc", "silence"]), at=st.integers(60, 140))
def stale_data_is_never_acted_on_for_long(walking_bundle: Path, kind: str, at: int) -> None:
    """Replayed old packets (ticks back and forth), frozen sensors behind an advancing tick, corrupt CRCs
    and silence all end the run as stale state within ``stale_ms``."""
    old = [protocol.encode_low_state(good_state(k)) for k in (10, 11)]

    def script(k: int) -> bytes | protocol.LowState | None:
        if k < at:
            return good_state(k)
        if kind == "replay":
            return old[k % 2]
        if kind == "frozen":
            state = good_state(at)
            state.tick = k + 1
            return state
        if kind == "bad_crc":
            return corrupt("bad_crc", good_state(k), np.random.default_rng(k))
        return None

    result, commands, _ = run_against(walking_bundle, script, command=(0.3, 0.0, 0.0))
    assert_every_command_safe(commands)
    assert_ends_in_damping(commands)
    assert result.safety_stop and result.reason.startswith("stale state"), result.reason
    COUNTS["faults raised"] += 1
    stale_ticks = int(FAST.safety.stale_ms / 2) + 4
    assert not [i for i, c in enumerate(commands) if i > at + stale_ticks and np.any(c.kp > 0)]


def fuzz(prop: Callable[..., None], walking_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run a property over all its examples in this process (so its counts are its own, whichever test worker
    runs it), print what it sent, checked and caught, and require that it checked more than 1000 commands."""
    before = COUNTS.copy()
    prop(walking_bundle=walking_bundle)
    done = COUNTS - before
    with capsys.disabled():
        print(f"\n{prop.__name__}: " + ", ".join(f"{k} {v}" for k, v in sorted(done.items())))
    assert done["commands checked"] > 1000, done


def test_corrupt_states_stop_the_policy_at_once(walking_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fuzz(corrupt_states_stop_the_policy_at_once, walking_bundle, capsys)


def test_stale_data_is_never_acted_on_for_long(walking_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fuzz(stale_data_is_never_acted_on_for_long, walking_bundle, capsys)


def test_reordered_packets_are_skipped_not_fatal(walking_bundle: Path) -> None:
    """Swapped pairs of packets: the older one is not fresh, so the runtime keeps the newer state and runs on."""

    def script(k: int) -> protocol.LowState:
        swap = k + 1 if k % 10 == 0 else k - 1 if k % 10 == 1 else k
        return good_state(swap)

    result, commands, _ = run_against(walking_bundle, script, command=(0.3, 0.0, 0.0))
    assert_every_command_safe(commands)
    assert result.reason == "duration" and not result.safety_stop


def test_clean_run_for_reference(walking_bundle: Path) -> None:
    result, commands, _ = run_against(walking_bundle, good_state, command=(0.3, 0.0, 0.0))
    assert result.reason == "duration", result.reason
    assert_every_command_safe(commands)
    assert_ends_in_damping(commands)
    assert sum(np.any(c.kp > 0) for c in commands) >= int((FAST.startup_s + RUN_S) / 0.002) - 5


def test_link_refuses_unsafe_commands(go1: RobotDescription) -> None:
    """The SDK link is the last line: a bad command is never packed; damping goes out instead."""
    got: list[protocol.LowCmd] = []
    robot = HostileGo1(lambda k: good_state(k))
    try:
        link = SdkLink("127.0.0.1", robot.port, LIMITS, local_port=0)
        link.send(go1.default_joint_pos, 20.0, 0.5)
        for q, kp, kd in ((np.full(12, np.nan), 20.0, 0.5), (go1.default_joint_pos, 2000.0, 0.5), (go1.default_joint_pos + 9, 20.0, 0.5)):
            with pytest.raises(RuntimeError, match="command"):
                link.send(q, kp, kd)
        link.send_damping(float("nan"))  # a bad damping gain falls back to the description's
        deadline = 100
        while len(robot.commands) < 5 and deadline:
            threading.Event().wait(0.01)
            deadline -= 1
        got = list(robot.commands)
    finally:
        robot.close()
    assert link.sent == 1 and link.refused == 3
    assert len(got) == 5 and np.all(got[0].kp == 20.0)
    assert all(np.all(c.kp == 0) and np.all(c.kd == go1.control.damping_kd) for c in got[1:])


def test_emulator_survives_hostile_commands() -> None:
    """Valid-CRC LowCmds with NaN/Inf targets, huge gains, random modes and random bytes: the emulator
    refuses what is non-finite, saturates the rest like a motor driver, and every LowState it sends is finite."""
    emulator = Emulator(EmulatorConfig(port=0, lockstep=True, seed=0))
    thread = threading.Thread(target=emulator.serve, kwargs={"duration_s": 30.0}, daemon=True)
    thread.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(0.2)
    rng = np.random.default_rng(0)
    n = 12
    received = 0
    try:
        for k in range(600):
            kind = k % 6
            cmd = protocol.LowCmd(
                np.full(n, protocol.MODE_SERVO, np.uint8),
                GO1.default_joint_pos.copy(),
                np.zeros(n),
                np.zeros(n),
                np.full(n, 20.0),
                np.full(n, 0.5),
            )
            if kind == 1:
                cmd.q[rng.integers(n)] = rng.choice([np.nan, np.inf, -np.inf])
            elif kind == 2:
                cmd.dq[rng.integers(n)] = rng.choice([np.nan, np.inf])
            elif kind == 3:
                cmd.kp[:] = 2047.0  # the largest Kp the wire can carry
                cmd.q = rng.uniform(-100, 100, n)
            elif kind == 4:
                cmd.mode = rng.integers(0, 256, n).astype(np.uint8)
                cmd.tau = rng.uniform(-127, 127, n)
            datagram = protocol.encode_low_cmd(cmd)
            if kind == 5:
                record = np.frombuffer(rng.bytes(protocol.LOW_CMD_SIZE), dtype=protocol.LOW_CMD).copy()
                record["head"], record["levelFlag"] = protocol.HEAD, protocol.LOW_LEVEL
                datagram = protocol._seal(record)
            client.sendto(datagram, ("127.0.0.1", emulator.port))
            if kind in (1, 2) or (kind == 5 and received == 0):
                continue  # refused: no physics tick, no answer (lockstep)
            try:
                state = protocol.decode_low_state(client.recv(4096))
            except TimeoutError:
                continue
            received += 1
            for name in ("quaternion", "gyroscope", "accelerometer", "rpy", "q", "dq", "tau_est", "foot_force"):
                assert np.all(np.isfinite(getattr(state, name))), (k, name)
    finally:
        emulator.stop()
        thread.join(timeout=10)
        client.close()
    assert received > 300 and emulator.stats["bad_commands"] >= 200
