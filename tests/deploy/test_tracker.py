"""The tracking camera's stream (``deploy/tracker.py``): hostile datagrams are refused, a stale reading is not used.
The emulated camera against the ground truth, and what reads it: tests/learning/robot/test_identify.py."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest

from unio4.deploy.tracker import (
    READING,
    READING_RATES,
    SUBSCRIBE,
    TrackerConfig,
    TrackerError,
    TrackerLink,
    decode_reading,
    encode_reading,
)

STILL = np.zeros(3)


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
        (encode_reading(1, 0.0, STILL, STILL) + b"\0", "41 bytes"),
        (b"U4TV" + encode_reading(1, 0.0, STILL, STILL)[4:], "tag"),  # a rates reading under the first format's tag
        (encode_reading(1, 0.0, STILL, np.array([0.0, 0.0, np.nan])), "angular velocity"),
        (encode_reading(1, 0.0, STILL, np.array([0.0, -25.0, 0.0])), "within 20"),
        (READING_RATES.pack(b"U4TR", 1, 0.0, 0.0, 0.0, 11.0, 0.0, 0.0, 0.0), "velocity"),
    ],
)
def test_a_datagram_that_is_not_a_reading_is_refused(datagram: bytes, why: str) -> None:
    with pytest.raises(TrackerError, match=why):
        decode_reading(datagram)


def test_a_reading_survives_its_datagram_in_either_format() -> None:
    v, w = np.array([0.61, -0.05, 0.01]), np.array([0.02, -0.1, 0.45])
    reading = decode_reading(encode_reading(2**33 + 5, 12.5, v))
    np.testing.assert_allclose(reading[:3], v, rtol=1e-6)  # float32 on the wire
    assert np.all(np.isnan(reading[3:]))  # the first format sends no rates
    np.testing.assert_allclose(decode_reading(encode_reading(7, 12.5, v, w)), np.concatenate([v, w]), rtol=1e-6)


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
        tracker.sendto(encode_reading(0, 0.0, np.array([0.5, 0.1, 0.0]), np.array([0.0, 0.0, 0.3])), subscriber)
        stranger.sendto(encode_reading(1, 0.0, np.array([3.0, 3.0, 3.0])), subscriber)  # not the tracker
        tracker.sendto(struct.pack("<4s", b"U4TV"), subscriber)  # the tracker's, but no reading
        time.sleep(0.05)
        np.testing.assert_allclose(link.poll(1.0), [0.5, 0.1, 0.0, 0.0, 0.0, 0.3], rtol=1e-6)
        assert link.stats == {"readings": 1, "rejected": 2}
        np.testing.assert_allclose(link.poll(1.04), [0.5, 0.1, 0.0, 0.0, 0.0, 0.3], rtol=1e-6)
        assert np.all(np.isnan(link.poll(1.06)))  # stale
        assert np.all(np.isnan(link.poll(1.6)))
        assert tracker.recvfrom(64)[0] == SUBSCRIBE  # asked again after resubscribe_s without a reading
    finally:
        link.close()
        tracker.close()
        stranger.close()
    with pytest.raises(ValueError, match=r"tracker\.address 'robot': expected HOST:PORT"):
        TrackerConfig(address="robot")
