"""``unio4 identify``: fit the simulator's motor strength, trunk mass and latency to robot logs of a bundle walking."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out, add_set, check_out_file, overrides

WORDS = ("identify",)
HELP = "fit the simulator's motor strength, trunk mass and latency to robot logs of a bundle walking (then fine-tune in simulation)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="deploy logs of BUNDLE walking at fixed forward commands (unio4 deploy --command VX,0,0 -o RUN)")
    p.add_argument("--bundle", required=True, help="the bundle the logs were recorded with")
    p.add_argument("--task", default="go1_flat", help="task preset the simulator runs")
    p.add_argument("--seconds", type=float, default=10.0, help="simulated seconds per candidate")
    add_set(p, "identify.motor_strength=[0.7,0.8,0.9,1.0]", "task", "identify")
    add_out(p, "write the estimate and the task overrides for training around it (YAML)")


def run(args: argparse.Namespace) -> int:
    import yaml

    from unio4.configs.loader import apply_overrides, from_dict
    from unio4.learning.robot.identify import IdentifyConfig, identify
    from unio4.sim.config import load_task_config

    check_out_file(args.out)  # before any work
    cfg = from_dict(IdentifyConfig, apply_overrides({}, overrides(args, "identify")), where="--set identify.*")
    task = load_task_config(args.task, overrides(args, "task"))
    result = identify([Path(r) for r in args.runs], Path(args.bundle), task, cfg, args.seconds)
    print(f"estimate: motor strength {result.motor_strength:g}, added trunk mass {result.added_mass:+g} kg (speeds by {result.speed})")
    for name, fit in result.fits.items():
        verdict = "identified" if fit.identified else "not identified: the walks say nothing, the task's prior range stays"
        print(f"  {name}: {fit.value:g}, consistent {fit.low:g} .. {fit.high:g} ({verdict})")
    features = cfg.features()
    print("  command | " + " | ".join(f"{f} robot / sim" for f in features))
    for vx, measured in sorted(result.robot.items()):
        cells = [f"{measured[f]:.3f} / {result.best[vx][f]:.3f}" for f in features]
        print(f"  {vx:7.2f} | " + " | ".join(cells))
    sets = " ".join(f"--set task.{o}" for o in result.task_overrides())
    print(f"fine-tune in simulation: unio4 train online --init CKPT --config finetune_go1 {sets}")
    if args.out:
        record = result.record()
        record["robot_features"] = {str(k): v for k, v in result.robot.items()}
        record["simulated_features"] = {str(k): v for k, v in result.best.items()}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(yaml.safe_dump(record, sort_keys=False))
    return 0
