"""The emulator's one entry: its flags and handler, behind both ``unio4 emulate`` and ``python -m unio4.sim.emulator``.

Light at import (argparse and the config loader only): the ``unio4`` parser adds these flags on every start.
The sim layer cannot use the CLI's shared option helpers (``unio4.commands.options``), so ``--set`` and
``--port`` are built here with the same names, help and messages as theirs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from unio4.configs.command_line import SetAction, port_number, run_reporting_errors
from unio4.sim.emulator.engines import ENGINES

HELP = "a simulated Go1 speaking the SDK's low-level UDP protocol (for deploy, sessions, tests)"
PROG = "python -m unio4.sim.emulator"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``unio4 emulate``."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=8007, help="UDP port (the real Go1 listens on 8007)")
    p.add_argument("--lockstep", action="store_true", help="advance physics one tick per LowCmd (deterministic)")
    p.add_argument("--physics", default="mujoco", choices=ENGINES, help="physics engine of the emulated robot")
    p.add_argument("--duration", type=float, default=None, help="stop after this much emulated time, s")
    p.add_argument("-o", "--out", default=None, required=False, help="write the true base trajectory here (.npz) on exit")
    p.add_argument("--seed", type=int, default=0, help="random seed of noise, pushes and faults")
    p.add_argument(
        "--realtime-priority",
        type=int,
        choices=range(100),
        metavar="0-99",
        default=50,
        help="SCHED_FIFO priority of the emulated robot's loop where permitted (0: the default scheduler)",
    )
    reality_help = "reality-gap profile in configs/reality/, a YAML path (see unio4 list), or zoo:SEED (the gap zoo's robot SEED)"
    p.add_argument("--reality", default="nominal", help=reality_help)
    set_help = "override a config field, e.g. --set reality.payload_kg=2.0 (repeatable; "
    set_help += "reality: the emulated robot's reality gap (configs/reality/))"
    p.add_argument("--set", dest="sets", action=SetAction, targets=("reality",), default=None, metavar="TARGET.KEY=VALUE", help=set_help)
    p.add_argument(
        "--reset-per-run", action="store_true", help="each new client (a new SDK socket) finds the robot as at start: exact evaluations"
    )
    tracker_help = "stream the trunk's true velocity as a tracking camera would, on this UDP port (0: any free one)"
    p.add_argument("--tracker-port", type=port_number, default=None, help=tracker_help)
    p.add_argument("--tracker-noise", type=float, default=0.02, help="the tracking camera's noise std per reading, m/s")
    faults = p.add_argument_group("fault injection")
    faults.add_argument("--state-loss", type=float, default=0.0, help="probability of dropping a LowState")
    faults.add_argument("--delay-ticks", type=int, default=0, help="LowStates leave this many 2 ms ticks late")
    faults.add_argument("--bad-crc", type=float, default=0.0, help="probability of a LowState with a corrupt CRC")
    faults.add_argument("--noise", type=float, default=0.0, help="sensor noise std (q rad, gyro rad/s; dq x10)")
    faults.add_argument("--push-every", type=float, default=-1.0, help="push the base every S seconds")
    faults.add_argument("--push-speed", type=float, default=0.5, help="push size, m/s")
    faults.add_argument("--fall-at", type=float, default=-1.0, help="topple the robot at T s")
    faults.add_argument("--stop-combo-at", type=float, default=-1.0, help="the remote's L2+B held from T s")
    faults.add_argument("--freeze-at", type=float, default=-1.0, help="stop sending LowStates at T s (dead link)")
    faults.add_argument("--nan-at", type=float, default=-1.0, help="the IMU reports NaN from T s")


def run(args: argparse.Namespace) -> int:
    """Serve the emulated Go1 that ``args`` (parsed by :func:`add_arguments`) describe until stopped."""
    from unio4.sim.emulator.faults import FaultConfig
    from unio4.sim.emulator.server import Emulator, EmulatorConfig
    from unio4.sim.emulator.tracker import TrackerEmulation
    from unio4.sim.reality_zoo import load_reality

    faults = FaultConfig(
        state_loss=args.state_loss,
        delay_ticks=args.delay_ticks,
        bad_crc=args.bad_crc,
        noise_std=args.noise,
        push_interval_s=args.push_every,
        push_speed=args.push_speed,
        fall_at_s=args.fall_at,
        stop_combo_at_s=args.stop_combo_at,
        freeze_at_s=args.freeze_at,
        nan_at_s=args.nan_at,
    )
    reality = load_reality(args.reality, list((args.sets or {}).get("reality", [])))
    cfg = EmulatorConfig(
        host=args.host,
        port=args.port,
        lockstep=args.lockstep,
        physics=args.physics,
        seed=args.seed,
        faults=faults,
        reality=reality,
        reset_per_run=args.reset_per_run,
        realtime_priority=args.realtime_priority,
        tracker=TrackerEmulation(port=args.tracker_port, noise_std=args.tracker_noise),
    )
    Emulator(cfg).serve(duration_s=args.duration, trace=Path(args.out) if args.out else None)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m unio4.sim.emulator FLAGS``: an expected failure is one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(prog=PROG, description=HELP, allow_abbrev=False)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_reporting_errors(lambda: run(args), prog=PROG)
