"""``unio4 play``: watch a policy (bundle or checkpoint) walk, as an MP4 or in MuJoCo's viewer."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out, add_set, overrides, velocity

WORDS = ("play",)
HELP = "a deterministic rollout of a bundle or checkpoint, rendered to MP4 (camera following the robot) or shown in MuJoCo's viewer"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", help="a policy bundle directory (unio4 export) or a training checkpoint (.pt)")
    p.add_argument("--task", default=None, help="task preset or YAML (default: the checkpoint's own task; go1_flat for a bundle)")
    add_set(p, "task.randomization.friction=[0.5,0.5]", "task")
    p.add_argument("--command", dest="command_vel", default="0.6,0,0", metavar="VX,VY,YAW", help="fixed velocity command")
    p.add_argument("--seconds", type=float, default=10.0)
    add_out(p, "write the rollout here (.mp4, or .gif)")
    p.add_argument("--viewer", action="store_true", help="open MuJoCo's interactive viewer (needs a display)")
    p.add_argument("--randomize", action="store_true", help="keep the task's domain randomisation (pushes, noise, friction...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--rerun",
        nargs="?",
        const="127.0.0.1:9876",
        default=None,
        metavar="ADDR",
        help="stream the rollout to a Rerun viewer (HOST[:PORT])",
    )
    p.add_argument("--rerun-save", default=None, metavar="FILE.rrd", help="write the rollout as a Rerun recording")


def run(args: argparse.Namespace) -> int:
    from unio4.sim.config import load_task_config
    from unio4.sim.play import bundle_factory, launch_viewer, play

    vel = velocity(args.command_vel)
    rerun = args.rerun is not None or args.rerun_save is not None
    if rerun:
        from unio4.deploy.rerun_stream import require_rerun

        require_rerun()  # before any work
        if args.viewer:
            raise ValueError("--viewer and --rerun/--rerun-save: choose one viewer")
    if Path(args.policy).is_dir():  # a bundle: its observation spec is checked against the task's
        make_policy, cfg = bundle_factory(args.policy), load_task_config(args.task or "go1_flat", overrides(args, "task"))
    else:  # a checkpoint: its own task unless --task says otherwise
        from unio4.learning.export import checkpoint_policy

        actor, cfg = checkpoint_policy(args.policy)
        if args.task or overrides(args, "task"):
            cfg = load_task_config(args.task or "go1_flat", overrides(args, "task"))
        make_policy = lambda task: actor  # noqa: E731
    if args.viewer:
        launch_viewer(make_policy, cfg, vel, args.seconds)
        return 0
    recorder = None
    if rerun:
        from unio4.robots.description import load_robot
        from unio4.sim.rerun_view import PlayRecorder

        recorder = PlayRecorder(load_robot(cfg.robot), args.rerun, args.rerun_save)
    out = Path(args.out) if args.out else None
    r = play(make_policy, cfg, vel, args.seconds, out, randomize=args.randomize, seed=args.seed, on_step=recorder)
    if recorder is not None:
        recorder.close()
    v = r.mean_velocity
    print(f"play {args.policy}: command vx {vel[0]:+.2f} vy {vel[1]:+.2f} yaw {vel[2]:+.2f}; measured (after the first quarter)")
    print(f"  vx {v[0]:+.2f} m/s, vy {v[1]:+.2f} m/s, yaw rate {v[2]:+.2f} rad/s; falls {r.falls}")
    if r.video is not None:
        print(f"  video: {r.video} ({r.frames} frames)")
    if recorder is not None:
        where = " and ".join(x for x in (args.rerun and f"viewer {args.rerun}", args.rerun_save) if x)
        print(f"  rerun: {recorder.steps} steps to {where}")
    return 0
