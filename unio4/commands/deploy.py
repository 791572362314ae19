"""``unio4 deploy``: run a policy bundle on a Go1 (or the emulator) at 50 Hz through the SDK, with safety."""

from __future__ import annotations

import argparse
import dataclasses

from unio4.commands.options import add_out, add_set, check_out_dir, overrides, velocity
from unio4.configs.command_line import port_number

WORDS = ("deploy",)
HELP = "run a policy bundle on a Go1 (or the emulator) at 50 Hz through the SDK, with safety"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="policy bundle directory (unio4 export)")
    p.add_argument("--robot", default="192.168.123.10:8007", help="IP[:PORT] of the robot's low-level controller")
    p.add_argument("--local-port", type=port_number, default=8080, help="local UDP port of the SDK (0: any)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of policy control after the stand-up")
    add_out(p, "directory of the crash-safe rollout log (default: a new runs/deploy/YYYYmmdd-HHMMSS)")
    p.add_argument("--explore", action="store_true", help="sample actions (seeded) and log log-probs, for on-robot fine-tuning")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--command", dest="command_vel", default=None, metavar="VX,VY,YAW", help="fixed velocity command (default: remote)")
    p.add_argument("--estop", default=None, metavar="URL", help="serial e-stop port or pyserial URL")
    p.add_argument("--config", default="go1", help="runtime preset in configs/deploy/ or a YAML path")
    p.add_argument(
        "--rerun", default=None, metavar="ADDR", help="stream the run to a Rerun viewer at HOST[:PORT] (port 9876), off the control loop"
    )
    p.add_argument(
        "--rerun-save", default=None, metavar="FILE.rrd", help="write the Rerun stream to this file instead of (or besides) a viewer"
    )
    add_set(p, "runtime.safety.max_tilt_rad=0.6", "runtime")


def run(args: argparse.Namespace) -> int:
    from unio4.configs.loader import check_bounds
    from unio4.deploy.rollout import RolloutRequest, run_rollout
    from unio4.deploy.runtime import RuntimeConfig

    check_out_dir(args.out)  # before any work
    command = None
    if args.command_vel is not None:  # checked here, so that a bad one names --command, not the runtime config
        command = velocity(args.command_vel)
        limits = next(f for f in dataclasses.fields(RuntimeConfig) if f.name == "command").metadata["bounds"]
        check_bounds(command, limits, f"--command {args.command_vel!r} (VX,VY,YAW)")
    request = RolloutRequest(
        bundle=args.bundle,
        robot=args.robot,
        duration=args.duration,
        out=args.out,
        explore=args.explore,
        seed=args.seed,
        local_port=args.local_port,
        command=command,
        config=args.config,
        runtime_overrides=tuple(overrides(args, "runtime")),
        estop=args.estop,
        rerun=args.rerun,
        rerun_save=args.rerun_save,
    )
    return run_rollout(request)  # the library entry a session's rollout process runs too
