"""The serial e-stop (deploy/estop.py) over pyserial's loop://."""

from __future__ import annotations

import pytest

from unio4.deploy.estop import EStopConfig, SerialEStop


def test_estop_heartbeat_and_stop_byte_over_loop() -> None:
    estop = SerialEStop(EStopConfig(url="loop://", heartbeat_timeout_s=0.1), now=0.0)
    port = estop.port
    port.write(b"H")
    assert estop.poll(0.05) is None
    port.write(b"HH")
    assert estop.poll(0.14) is None and estop.heartbeats == 3
    assert estop.poll(0.20) is None  # 60 ms since the last heartbeat
    reason = estop.poll(0.30)
    assert reason is not None and reason.startswith("e-stop heartbeat lost: none for 160 ms")
    port.write(b"HS")
    assert estop.poll(0.31) == "e-stop pressed (loop://)"
    estop.close()


def test_estop_that_cannot_open_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"e-stop '/dev/nonexistent-estop': cannot open"):
        SerialEStop(EStopConfig(url="/dev/nonexistent-estop"), now=0.0)
