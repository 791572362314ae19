"""The online phase's switches to the authors' behaviour, one at a time, over seeds (docs/uni-o4-fidelity.md).

From one offline checkpoint, ``unio4 train online --env ENV --init CKPT`` runs with the chosen preset
(default ``uni_o4_online_hopper_medium``) and with each switch of the authors' code turned on alone,
then with all of them (the ``uni_o4_paper_online_<task>`` preset), for every seed, on one torch thread.
Runs already finished in ``--out`` are skipped, so an interrupted call resumes. It prints one row per
variant: the offline policy's score (the first evaluation), the last evaluation and the best, each as
mean +- std over seeds of the D4RL-normalised return, and how many seeds ended above the offline score.

    .venv/bin/python scripts/bench/online_switches.py runs/hm/uni_o4/checkpoints/offline.pt --env Hopper-v4 \\
        --out runs/switches/hm --iterations 25 --seeds 0 1 2

With ``--data FILE.h5`` (the offline dataset) it also runs ``v_refit``: a fresh V fitted to the data's
Monte-Carlo returns before the first update (``critic_init=refit``), alone, and with the task's reward
scaling as the authors pair them (``reward_scaling_v_refit``). The fit's 1e6 steps take about 1.5 h on
one CPU thread; ``--refit-steps`` shortens it (recorded in the runs' configs, not in the variant's name).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

from unio4.learning.scores import normalized_score

ROOT = Path(__file__).resolve().parents[2]

# Each of the authors' settings alone (train.* overrides), on top of the base preset.
SWITCHES: dict[str, list[str]] = {
    "base": [],
    "batch_advantages": ["ppo.advantage_normalization=batch"],
    "lr_decay_3M": ["lr_decay_samples=3000000"],
    "value_clip_0.05": ["ppo.value_clip=0.05", "ppo.value_clip_scale=absolute"],
    "obs_unclipped": ["network.obs_clip=null"],
}
REWARD_SWITCH = {"hopper": ["reward_scale=0.1"], "halfcheetah": ["reward_normalization=running"]}
REFIT = "critic_init=refit"  # needs the offline data: only with --data


def variants(env: str, base: str, paper: str, data: Path | None = None) -> dict[str, tuple[str, list[str]]]:
    """name -> (preset, overrides): the base, each switch alone, and the paper preset with every switch;
    with ``data``, also the V refit alone and with the task's reward scaling."""
    out = {name: (base, sets) for name, sets in SWITCHES.items()}
    task = env.split("-")[0].lower()
    if task in REWARD_SWITCH:
        out["reward_scaling"] = (base, REWARD_SWITCH[task])
    out["paper"] = (paper, [])
    if data is not None:
        out["v_refit"] = (base, [REFIT])
        if task in REWARD_SWITCH:
            out["reward_scaling_v_refit"] = (base, [*REWARD_SWITCH[task], REFIT])
    return out


def train(args: argparse.Namespace, preset: str, sets: list[str], seed: int, run_dir: Path) -> None:
    """One online run, unless its final checkpoint is already there."""
    if (run_dir / "checkpoints" / "final.pt").is_file():
        return
    cmd = [str(ROOT / ".venv/bin/unio4"), "train", "online", "--env", args.env, "--init", str(args.checkpoint)]
    cmd += ["--config", preset, "--iterations", str(args.iterations), "--seed", str(seed), "--threads", "1"]
    cmd += ["--eval-episodes", str(args.episodes), "--out", str(run_dir), "--logger", "none", "--set", f"train.seed={seed}"]
    cmd += [x for s in sets for x in ("--set", f"train.{s}")]
    if REFIT in sets:
        cmd += ["--data", str(args.data)]
        cmd += ["--set", f"train.value_refit.steps={args.refit_steps}"] if args.refit_steps is not None else []
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    print("+", " ".join(cmd), flush=True)
    with (run_dir.parent / f"{run_dir.name}.log").open("w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=ROOT)


def scores(run_dir: Path, env: str) -> list[float]:
    """The run's evaluations, in order, as D4RL-normalised scores."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [normalized_score(env, r["eval/return"]) for r in rows if "eval/return" in r]


def spread(xs: list[float], digits: int = 1) -> str:
    """Mean +- standard deviation over seeds (the value alone for one seed)."""
    return f"{statistics.mean(xs):.{digits}f} +- {statistics.stdev(xs):.{digits}f}" if len(xs) > 1 else f"{xs[0]:.{digits}f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--env", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--base", default="uni_o4_online_hopper_medium")
    p.add_argument("--paper", default="uni_o4_paper_online_hopper_medium")
    p.add_argument("--iterations", type=int, default=25)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--summary-only", action="store_true")
    p.add_argument("--variants", nargs="+", default=None, help="run and list only these variants (default: all)")
    p.add_argument("--data", type=Path, default=None, help="the offline dataset: adds the v_refit variants")
    p.add_argument("--refit-steps", type=int, default=None, help="v_refit: the fit's Adam steps (default: the preset's 1e6)")
    args = p.parse_args()
    table = variants(args.env, args.base, args.paper, args.data)
    unknown = set(args.variants or ()) - set(table)
    if unknown:
        p.error(f"--variants: unknown {sorted(unknown)}; expected some of {sorted(table)}")
    table = {k: v for k, v in table.items() if args.variants is None or k in args.variants}
    if not args.summary_only:
        for seed in args.seeds:
            for name, (preset, sets) in table.items():
                train(args, preset, sets, seed, args.out / name / f"seed{seed}")
    print("| variant | offline (first eval) | last eval | best eval | seeds last > offline |\n|---|---|---|---|---|")
    for name in table:
        runs = [
            scores(args.out / name / f"seed{s}", args.env) for s in args.seeds if (args.out / name / f"seed{s}" / "metrics.jsonl").is_file()
        ]
        runs = [r for r in runs if r]
        if runs:
            above = sum(r[-1] > r[0] for r in runs)
            row = [spread([r[0] for r in runs]), spread([r[-1] for r in runs]), spread([max(r) for r in runs]), f"{above} / {len(runs)}"]
            print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
