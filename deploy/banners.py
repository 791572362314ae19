"""Keep third-party banners off stdout.

Native libraries print to the process's stdout from C: the Unitree SDK ("UDP Initialized. socketfd:
...", "Closing UDP."), PyBullet ("pybullet build time: ..."). A command's stdout is its own output
(tables, one line per step, JSON) and is often piped or parsed, so those banners are sent to stderr
by pointing file descriptor 1 at descriptor 2 while the library talks.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Within the block, anything written to file descriptor 1 (C's stdout included) goes to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
