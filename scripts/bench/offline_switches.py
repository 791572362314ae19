"""The offline phase's switches to the authors' behaviour, one at a time, over seeds (docs/uni-o4-fidelity.md).

For every seed, one finished ``unio4 train offline --env`` run with the base preset (``--runs``, a
directory per seed: ``DIR/off_s{seed}``) is the base row, and each switch runs again with ``--reuse``
of it: only the stages whose settings the switch changes are retrained (an OPE switch re-runs the
improvement loop, whose acceptances AM-Q decides; a dynamics switch re-runs the model and the loop;
the output choice re-runs only the selection), so a row differs from the base by that switch alone,
on the same critics and BC members. It prints one row per variant, each as mean +- std over seeds: the
selected policy's D4RL score (10 episodes), the output group's mean true score, and AM-Q's Spearman
rank correlation with the true returns over all 12 candidates.

    .venv/bin/python scripts/bench/offline_switches.py runs/hm/hopper-medium.h5 --env Hopper-v4 \\
        --runs runs/hm --out runs/offline_switches/hm --seeds 0 1 2

Switches that change the critics (time-outs as terminals, unclipped observations, which V's network
reads) retrain the 41-minute critic stage and are not in this list.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

from online_switches import spread  # the sibling script: mean +- std over seeds

from unio4.configs.loader import read_yaml
from unio4.learning.scores import normalized_score

ROOT = Path(__file__).resolve().parents[2]

# Each of the authors' settings alone (train.* overrides), on top of the base run; then all of them.
# (fresh_states is uni_o4_offline_cpu's default since this measurement: over a base made with it, that row is the base.)
SWITCHES: dict[str, list[str]] = {
    "output_learner": ["output=learner"],
    "ope_terminal_drop": ["ope.terminal=drop"],
    "ope_fresh_states": ["ope.fresh_states=true"],
    "dynamics_member_loss_sum": ["dynamics.member_loss=sum"],
}
SWITCHES["paper_on_base_critics"] = [s for sets in SWITCHES.values() for s in sets] + ["dynamics.bootstrap=true", "bc.regularizer=paper"]
# Not the authors': the previous default, to compare over a base made with today's (fresh start states);
# and fresh states with each check's behaviour policy rescored on the learner's draw.
SWITCHES["ope_fixed_states"] = ["ope.fresh_states=false"]
SWITCHES["fresh_paired"] = ["ope.fresh_states=true", "improvement.acceptance=paired"]


def train(args: argparse.Namespace, sets: list[str], seed: int, run_dir: Path) -> None:
    """One offline run reusing the base run's matching stages, unless it already finished."""
    if (run_dir / "evaluation.json").is_file():
        return
    base = args.runs / f"off_s{seed}"
    cmd = [str(ROOT / ".venv/bin/unio4"), "train", "offline", "--data", str(args.data), "--env", args.env]
    cmd += ["--config", args.config, "--reuse", str(base), "--eval-episodes", str(args.episodes), "--threads", "1"]
    cmd += ["--logger", "none", "--out", str(run_dir), "--set", f"train.seed={seed}"]
    cmd += [x for s in sets for x in ("--set", f"train.{s}")]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    print("+", " ".join(cmd), flush=True)
    with (run_dir.parent / f"{run_dir.name}.log").open("w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=ROOT)


def row(run_dir: Path, env: str) -> tuple[float, float, float] | None:
    """(selected score, output group's mean true score, AM-Q Spearman) of a finished run."""
    if not (run_dir / "evaluation.json").is_file():
        return None
    selected = json.loads((run_dir / "evaluation.json").read_text())["d4rl_score"]
    ope = json.loads((run_dir / "diagnostics.json").read_text())["ope"]
    group = read_yaml(run_dir / "run.yaml")["configs"]["train"]["output"]
    members = len(ope["returns"]) // len(ope["groups"])
    start = ope["groups"].index(group) * members
    group_mean = statistics.mean(normalized_score(env, r) for r in ope["returns"][start : start + members])
    return selected, group_mean, ope["spearman"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path, help="the offline dataset the base runs trained on")
    p.add_argument("--env", required=True)
    p.add_argument("--runs", type=Path, required=True, help="holds the base runs, one per seed: off_s{seed}")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", default="uni_o4_offline_cpu", help="the base runs' preset")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--summary-only", action="store_true")
    p.add_argument("--variants", nargs="+", choices=sorted(SWITCHES), default=None, help="run and list only these (default: all)")
    args = p.parse_args()
    table = {k: v for k, v in SWITCHES.items() if args.variants is None or k in args.variants}
    if not args.summary_only:
        for seed in args.seeds:
            for name, sets in table.items():
                train(args, sets, seed, args.out / name / f"seed{seed}")
    print("| variant | selected score | output group's mean score | AM-Q Spearman | seeds |\n|---|---|---|---|---|")
    dirs = {"base": [args.runs / f"off_s{s}" for s in args.seeds]}
    dirs |= {name: [args.out / name / f"seed{s}" for s in args.seeds] for name in table}
    for name, runs in dirs.items():
        rows = [r for r in (row(d, args.env) for d in runs) if r is not None]
        if rows:
            cols = [spread([r[0] for r in rows]), spread([r[1] for r in rows]), spread([r[2] for r in rows], 2)]
            print(f"| {name} | " + " | ".join(cols) + f" | {len(rows)} |")


if __name__ == "__main__":
    main()
