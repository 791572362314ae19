"""``unio4 emulate``: a simulated Go1 speaking the SDK's low-level UDP protocol (for deploy, sessions, tests).

The flags and the handler live in the sim layer (:mod:`unio4.sim.emulator.entry`), which ``python -m
unio4.sim.emulator`` runs too: one parser for both.
"""

from __future__ import annotations

from unio4.sim.emulator.entry import HELP, add_arguments, run

__all__ = ["HELP", "WORDS", "add_arguments", "run"]

WORDS = ("emulate",)
