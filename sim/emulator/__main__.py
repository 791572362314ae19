"""``python -m unio4.sim.emulator FLAGS``: the emulator in a process of its own (what ``spawn`` starts); FLAGS as ``unio4 emulate``."""

import sys

from unio4.sim.emulator.entry import main

if __name__ == "__main__":
    sys.exit(main())
