"""The Go1 wire format, proved against the real unitree_legged_sdk binary over loopback UDP."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
from unitree_legged_sdk import robot_interface as sdk

from unio4.deploy import protocol as P


@pytest.fixture
def link() -> Iterator[tuple[socket.socket, sdk.UDP]]:
    """A plain UDP socket standing in for the robot, and the SDK aimed at it."""
    robot = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    robot.bind(("127.0.0.1", 0))
    robot.settimeout(2.0)
    udp = sdk.UDP(P.LOW_LEVEL, 0, "127.0.0.1", robot.getsockname()[1])
    yield robot, udp
    robot.close()


def _sdk_send(udp: sdk.UDP, rng: np.random.Generator) -> dict[str, np.ndarray]:
    cmd = sdk.LowCmd()
    udp.InitCmdData(cmd)
    values = {
        "q": rng.uniform(-3, 3, 12),
        "dq": rng.uniform(-20, 20, 12),
        "tau": rng.uniform(-30, 30, 12),
        "kp": rng.uniform(0, 100, 12),
        "kd": rng.uniform(0, 5, 12),
    }
    for i in range(12):
        m = cmd.motorCmd[i]
        m.mode, m.q, m.dq, m.tau, m.Kp, m.Kd = P.MODE_SERVO, *(float(values[k][i]) for k in ("q", "dq", "tau", "kp", "kd"))
    remote = P.Remote(frozenset({"L2", "B"}), lx=0.25, ly=-0.5, rx=0.75, ry=-1.0)
    cmd.wirelessRemote = list(P.encode_remote(remote))
    udp.SetSend(cmd)
    udp.Send()
    return values


def test_sdk_lowcmds_decode_exactly(link: tuple[socket.socket, sdk.UDP]) -> None:
    robot, udp = link
    rng = np.random.default_rng(0)
    for _ in range(20):
        sent = _sdk_send(udp, rng)
        datagram, _ = robot.recvfrom(4096)
        assert len(datagram) == P.LOW_CMD_SIZE == 614
        cmd = P.decode_low_cmd(datagram)  # checks head, level and the SDK's CRC
        np.testing.assert_array_equal(cmd.mode, P.MODE_SERVO)
        np.testing.assert_array_equal(cmd.q, sent["q"].astype(np.float32))
        np.testing.assert_array_equal(cmd.dq, sent["dq"].astype(np.float32))
        # fixed point, truncated as the SDK's C casts do
        np.testing.assert_array_equal(cmd.tau, np.trunc(sent["tau"] * 256) / 256)
        np.testing.assert_array_equal(cmd.kp, np.trunc(sent["kp"] * 32) / 32)
        np.testing.assert_array_equal(cmd.kd, np.trunc(sent["kd"] * 16) / 16)
        remote = P.decode_remote(cmd.wireless_remote)
        assert remote == P.Remote(frozenset({"L2", "B"}), lx=0.25, ly=-0.5, rx=0.75, ry=-1.0)
        # every byte, the 8 unused motor slots included, re-encodes identically
        assert P.encode_low_cmd(P.decode_low_cmd(datagram, num_motors=P.NUM_MOTORS)) == datagram


def _random_state(rng: np.random.Generator, tick: int) -> P.LowState:
    return P.LowState(
        tick=tick,
        quaternion=rng.normal(size=4),
        gyroscope=rng.normal(size=3),
        accelerometer=rng.normal(size=3),
        rpy=rng.normal(size=3),
        q=rng.uniform(-3, 3, 12),
        dq=rng.uniform(-20, 20, 12),
        tau_est=rng.uniform(-30, 30, 12),
        foot_force=rng.uniform(0, 300, 4),
        wireless_remote=P.encode_remote(P.Remote(frozenset({"A", "start"}), ly=0.5)),
    )


def _sdk_receive(robot: socket.socket, udp: sdk.UDP, packet: bytes) -> sdk.LowState:
    _sdk_send(udp, np.random.default_rng(1))  # the SDK only listens to its target's address
    _, sdk_addr = robot.recvfrom(4096)
    robot.sendto(packet, sdk_addr)
    state = sdk.LowState()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        udp.Recv()
        udp.GetRecv(state)
        if state.tick != 0:
            break
        time.sleep(0.002)
    return state


def test_emulator_lowstates_read_back_exactly_by_the_sdk(link: tuple[socket.socket, sdk.UDP]) -> None:
    robot, udp = link
    sent = _random_state(np.random.default_rng(2), tick=123456)
    state = _sdk_receive(robot, udp, P.encode_low_state(sent))
    assert state.tick == 123456
    f32 = np.float32
    np.testing.assert_array_equal(np.array(state.imu.quaternion, f32), sent.quaternion.astype(f32))
    np.testing.assert_array_equal(np.array(state.imu.gyroscope, f32), sent.gyroscope.astype(f32))
    np.testing.assert_array_equal(np.array(state.imu.accelerometer, f32), sent.accelerometer.astype(f32))
    np.testing.assert_array_equal(np.array(state.imu.rpy, f32), sent.rpy.astype(f32))
    motors = state.motorState
    np.testing.assert_array_equal(np.array([m.q for m in motors[:12]], f32), sent.q.astype(f32))
    np.testing.assert_array_equal(np.array([m.dq for m in motors[:12]], f32), sent.dq.astype(f32))
    np.testing.assert_allclose([m.tauEst for m in motors[:12]], np.trunc(sent.tau_est * 256) / 256, atol=1e-6)
    np.testing.assert_array_equal(list(state.footForce), np.rint(sent.foot_force))
    assert P.decode_remote(bytes(state.wirelessRemote)) == P.Remote(frozenset({"A", "start"}), ly=0.5)


def test_sdk_rejects_a_lowstate_with_a_bad_crc(link: tuple[socket.socket, sdk.UDP]) -> None:
    robot, udp = link
    packet = bytearray(P.encode_low_state(_random_state(np.random.default_rng(3), tick=77)))
    packet[-1] ^= 0xFF
    assert _sdk_receive(robot, udp, bytes(packet)).tick == 0  # the SDK kept its empty state


def test_decoder_names_what_is_wrong() -> None:
    good = P.encode_low_state(_random_state(np.random.default_rng(4), tick=1))
    assert P.decode_low_state(good).tick == 1
    with pytest.raises(P.ProtocolError, match=r"LowState: 806 bytes, expected 807"):
        P.decode_low_state(good[:-1])
    with pytest.raises(P.ProtocolError, match=r"LowState\.crc"):
        P.decode_low_state(good[:100] + bytes([good[100] ^ 1]) + good[101:])
    with pytest.raises(P.ProtocolError, match=r"LowState\.head"):
        P.decode_low_state(b"\x00\x00" + good[2:])
    with pytest.raises(P.ProtocolError, match=r"LowCmd: 807 bytes, expected 614"):
        P.decode_low_cmd(good)
    with pytest.raises(ValueError, match="unknown remote buttons"):
        P.encode_remote(P.Remote(frozenset({"Z"})))


def test_crc_matches_the_bitwise_reference() -> None:
    """The zlib-based CRC equals Unitree's bit-by-bit crc32_core on random packets."""

    def reference(packet: bytes) -> int:
        crc, poly = 0xFFFFFFFF, 0x04C11DB7
        for word in np.frombuffer(packet, "<u4", count=len(packet) // 4 - 1):
            for bit in range(31, -1, -1):
                top = crc & 0x80000000
                crc = (crc << 1) & 0xFFFFFFFF
                if top:
                    crc ^= poly
                if int(word) >> bit & 1:
                    crc ^= poly
        return crc

    rng = np.random.default_rng(5)
    for size in (P.LOW_CMD_SIZE, P.LOW_STATE_SIZE, 64):
        packet = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert P.crc32_core(packet) == reference(packet)
