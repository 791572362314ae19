"""``unio4 replay``: a robot log: open-loop replay in the simulator (sim vs log), or plots of the log."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out, add_set, check_out_dir, check_out_file, overrides
from unio4.configs.command_line import port_number
from unio4.deploy.rollout import robot_address
from unio4.sim.backends import BACKENDS

WORDS = ("replay",)
HELP = "a robot log: open-loop replay in the simulator (sim vs log), or plots of the log"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="rollout log directory (unio4 deploy --out)")
    p.add_argument(
        "--mode",
        default="sim",
        choices=("sim", "robot", "plot", "mcap", "rerun"),
        help="sim: the logged targets in a physics backend; robot: the logged targets on a robot at reduced gains; plot; "
        "mcap: the log as an MCAP file for Foxglove (-o FILE.mcap, default RUN/replay/log.mcap); "
        "rerun: the log in Rerun (the robot in 3-D, joints, velocity, foot forces, events)",
    )
    p.add_argument("--backend", default="mujoco", choices=BACKENDS, help="physics backend for --mode sim (default: mujoco)")
    add_out(p, "where PNGs (and the robot replay's log) go (default: RUN/replay); --mode mcap: the .mcap file to write")
    p.add_argument("--render", action="store_true", help="--mode sim: also log | sim pictures (PNG strip + GIF; MuJoCo renderer)")
    p.add_argument("--robot", default=None, help="--mode robot: IP[:PORT] of the robot or the emulator")
    p.add_argument("--local-port", type=port_number, default=8080, help="--mode robot: local UDP port (0: any free one)")
    p.add_argument("--gain-scale", type=float, default=0.6, help="--mode robot: Kp and Kd multiplier (default 0.6)")
    p.add_argument("--config", default="go1", help="--mode robot: runtime preset in configs/deploy/ (safety limits)")
    p.add_argument("--rerun", default=None, metavar="ADDR", help="--mode rerun: send to a Rerun viewer at HOST[:PORT] (port 9876)")
    p.add_argument(
        "--rerun-save", default=None, metavar="FILE.rrd", help="--mode rerun: write a recording (default without --rerun: OUT/rerun.rrd)"
    )
    add_set(p, "runtime.safety.max_tilt_rad=0.6", "runtime")


def run(args: argparse.Namespace) -> int:
    if args.mode == "mcap":  # the deploy path: no torch
        from unio4.deploy.mcap_export import export_mcap

        check_out_file(args.out)
        mcap = export_mcap(args.run, args.out or Path(args.run) / "replay" / "log.mcap")
        print(f"wrote {mcap.path}: {mcap.steps} steps, {mcap.events} events; " + ", ".join(f"{t} {n}" for t, n in mcap.topics.items()))
        return 0
    check_out_dir(args.out)  # before any work
    out = Path(args.out or Path(args.run) / "replay")
    if args.mode == "rerun" or args.rerun is not None or args.rerun_save is not None:
        return _rerun(args, out)
    if args.mode == "robot":  # the deploy path: no torch
        from unio4.configs.loader import load, resolve_config_path
        from unio4.deploy.replay import replay_on_robot
        from unio4.deploy.runtime import RuntimeConfig

        if not args.robot:
            raise ValueError("--mode robot needs --robot IP[:PORT] (the robot, or unio4 emulate)")
        cfg = load(RuntimeConfig, resolve_config_path(args.config, "deploy"), overrides(args, "runtime"))
        host, port = robot_address(args.robot)
        robot = replay_on_robot(args.run, host, port, cfg, args.gain_scale, out / "robot", args.local_port)
        print(f"replayed {robot.steps} logged targets at {args.gain_scale:.2f} x gains; ended by {robot.result.reason}")
        first, whole = robot.rms_first_second, robot.rms_joint_error
        print(f"  joint angle RMS error vs the log: first second {first:.3f} rad, all {whole:.3f} rad")
        print(f"  replay log: {robot.log_dir}")
        return 1 if robot.result.safety_stop else 0
    from unio4.sim.replay import plot_log, replay_in_sim

    if args.mode == "plot":
        for path in plot_log(args.run, out):
            print(f"wrote {path}")
        return 0
    r = replay_in_sim(args.run, out, backend=args.backend, render=args.render)
    legs = "  ".join(f"{leg} {v:.3f}" for leg, v in r.rms_first_second.items() if leg != "all")
    print(f"open-loop replay of {len(r.sim_joint_pos)} logged policy steps in {args.backend}:")
    print(f"  joint angle RMS error, first second: {r.rms_first_second['all']:.3f} rad ({legs})")
    print(f"  joint angle RMS error, whole log:    {r.rms_all['all']:.3f} rad; roll/pitch RMS error {r.roll_pitch_rms:.3f} rad")
    print(f"  plot: {r.plot}")
    if r.strip is not None:
        print(f"  pictures (log | sim): {r.strip}, {r.animation}")
    return 0


def _rerun(args: argparse.Namespace, out: Path) -> int:
    from unio4.deploy.rerun_stream import require_rerun

    require_rerun()  # one line when rerun-sdk is missing, before any work
    if args.mode != "rerun":
        raise ValueError("--rerun and --rerun-save go with --mode rerun")
    from unio4.sim.rerun_view import replay_to_rerun

    save = Path(args.rerun_save) if args.rerun_save else (out / "rerun.rrd" if args.rerun is None else None)
    r = replay_to_rerun(args.run, args.rerun, save)
    where = " and ".join(x for x in (args.rerun and f"viewer {args.rerun}", save and str(save)) if x)
    print(f"rerun: {r.steps} logged policy steps and {r.events} events to {where}")
    for note in r.notes:
        print(f"  note: {note}")
    return 0
