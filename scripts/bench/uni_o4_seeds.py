"""One dataset, several seeds: Uni-O4 offline -> online against d3rlpy's IQL and TD3+BC at equal wall clock.

For each seed it runs (skipping what a previous call already finished, so an interrupted row resumes):

1. ``unio4 train offline --env ENV --set train.seed=S`` (one torch thread), timed;
2. ``unio4 train online --init`` from that run (one torch thread; ``--online-iterations 0`` skips
   it), evaluated on the offline evaluation's episodes, so that its first evaluation is the offline
   policy's own score and its last one is comparable with it;
3. each of d3rlpy's ``--baselines`` (IQL and TD3+BC; ``d3rlpy_baselines.py`` in its own virtual
   environment) for as many seconds of training as step 1 took, scored at ``--baseline-steps`` too;
   IQL then fine-tunes online for as many environment steps as step 2 took (IQL's own recipe: offline
   and new data in one buffer, one update per step), the baseline of the online phase.

Then it prints one markdown row per seed (``(running)`` where the offline run has not finished) and
the mean +- std, all as D4RL-normalised scores: the BC members and the accepted (improved) members
(5 episodes each, the diagnostics' protocol), the selected offline policy, the first and last online
evaluation, each baseline at ``--baseline-steps`` and at equal wall clock (10 episodes each, seeds 10000, ...), and
the wall clock of each. ``--summary-only`` prints the table of an existing output folder without
running anything. Calls with different ``--seeds`` may run at the same time on one output folder
(one per core).

    .venv/bin/python scripts/bench/uni_o4_seeds.py runs/data/hopper-medium.h5 --env Hopper-v4 --out runs/seeds/hm
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from unio4.learning.scores import normalized_score

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"iql": "IQL", "td3bc": "TD3+BC"}  # d3rlpy_baselines.py --algo -> column name


def run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` with its output in ``log``; the wall clock in seconds. Raises if it fails."""
    print("+", " ".join(cmd), flush=True)
    start = time.perf_counter()
    with log.open("w") as f:
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True, cwd=ROOT)
    return time.perf_counter() - start


def read_json(path: Path, default: object) -> object:
    """``path``'s JSON (or JSON lines, a list), or ``default`` when the file is not there."""
    if not path.is_file():
        return default
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines()] if path.suffix == ".jsonl" else json.loads(text)


def record_time(out: Path, key: str, seconds: float) -> None:
    """Add ``key``'s wall clock to ``out/times.json``, re-read just before writing, so that calls for
    other seeds running at the same time (one per core) keep theirs."""
    times: dict[str, float] = read_json(out / "times.json", {})  # type: ignore[assignment]
    (out / "times.json").write_text(json.dumps({**times, key: seconds}, indent=1))


def seed_runs(args: argparse.Namespace, seed: int) -> None:
    out: Path = args.out
    off, on = out / f"off_s{seed}", out / f"{args.online_name}_s{seed}"
    if not (off / "evaluation.json").is_file():
        cmd = [str(ROOT / ".venv/bin/unio4"), "train", "offline", "--data", str(args.data), "--config", args.config]
        cmd += ["--env", args.env, "--threads", "1", "--set", f"train.seed={seed}", "--out", str(off)]
        for item in args.set:
            cmd += ["--set", item]
        record_time(out, f"off_s{seed}", run(cmd, out / f"off_s{seed}.log"))
    if args.online_iterations and not (on / "checkpoints" / "final.pt").is_file():
        cmd = [str(ROOT / ".venv/bin/unio4"), "train", "online", "--env", args.env, "--config", args.online_config]
        cmd += ["--init", str(off / "checkpoints" / "offline.pt"), "--iterations", str(args.online_iterations)]
        cmd += ["--seed", str(seed), "--eval-episodes", str(args.eval_episodes), "--threads", "1", "--out", str(on)]
        record_time(out, on.name, run(cmd, out / f"{on.name}.log"))
    if args.d3rlpy_python:
        for algo in args.baselines:
            baseline_run(args, seed, algo)


def baseline_run(args: argparse.Namespace, seed: int, algo: str) -> None:
    """d3rlpy's ``algo`` on the same file for as long as the seed's Uni-O4 offline run took (and scored
    at ``--baseline-steps``), unless an earlier call wrote its result."""
    out: Path = args.out
    result = out / f"{algo}_s{seed}.jsonl"
    if result.is_file():
        return
    times: dict[str, float] = read_json(out / "times.json", {})  # type: ignore[assignment]
    budget = times.get(f"off_s{seed}")
    if budget is None and not args.baseline_seconds:
        missing = f"{out / f'off_s{seed}'}: finished by an earlier call whose wall clock is not in {out / 'times.json'}"
        raise SystemExit(f"{missing}; give --baseline-seconds")
    cmd = [args.d3rlpy_python, str(ROOT / "scripts/bench/d3rlpy_baselines.py"), str(args.data), "--env", args.env]
    cmd += ["--algo", algo, "--steps", str(args.baseline_steps), "--seconds", str(args.baseline_seconds or budget), "--marks", "1"]
    cmd += ["--seed", str(seed), "--threads", "1", *online_budget(args, seed, algo)]
    print("+", " ".join(cmd), flush=True)
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout.splitlines()
    result.write_text("".join(line + "\n" for line in lines if line.startswith("{")))


def online_budget(args: argparse.Namespace, seed: int, algo: str) -> list[str]:
    """IQL's online fine-tuning arguments: as many environment steps as the seed's Uni-O4 online run took."""
    if algo != "iql" or not args.online_iterations:
        return []
    rows: list[dict[str, float]] = read_json(args.out / f"{args.online_name}_s{seed}" / "metrics.jsonl", [])  # type: ignore[assignment]
    steps = max((int(r["step"]) for r in rows if "step" in r), default=0)
    return ["--online-steps", str(steps), "--online-marks", "4"] if steps else []


def summarise(args: argparse.Namespace) -> None:
    out: Path = args.out
    times: dict[str, float] = read_json(out / "times.json", {})  # type: ignore[assignment]
    columns = ["BC members", "accepted members", "selected (offline)", "online first / last"]
    for algo in args.baselines:
        columns += [f"{NAMES[algo]} {args.baseline_steps // 1000} k steps", f"{NAMES[algo]}, equal wall clock (steps)"]
    columns += ["IQL online first / last"] if "iql" in args.baselines and args.online_iterations else []
    columns += ["Uni-O4 offline wall clock"]
    print("| seed | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    keys = ("bc", "acc", "sel", "on", "iql_on", *(f"{a}{eq}" for a in args.baselines for eq in ("", "_eq")))
    per: dict[str, list[float]] = {c: [] for c in keys}

    def cell(key: str, value: float | None, text: str = "{:.1f}") -> str:
        """One table cell; the value also goes into its column's mean +- std."""
        if value is None:
            return "-"
        per[key].append(value)
        return text.format(value)

    for seed in args.seeds:
        off = out / f"off_s{seed}"
        if not (off / "evaluation.json").is_file():  # still running: the row says so, the means leave it out
            print(f"| {seed} | " + " | ".join(["(running)"] + ["-"] * (len(columns) - 1)) + " |")
            continue
        diag = json.loads((off / "diagnostics.json").read_text())
        returns, size = diag["ope"]["returns"], len(diag["ope"]["returns"]) // len(diag["ope"]["groups"])
        scores = [normalized_score(args.env, r) for r in returns]
        cells = [cell("bc", statistics.mean(scores[:size])), cell("acc", statistics.mean(scores[size : 2 * size]))]
        cells.append(cell("sel", json.loads((off / "evaluation.json").read_text())["d4rl_score"]))
        rows: list[dict[str, float]] = read_json(out / f"{args.online_name}_s{seed}" / "metrics.jsonl", [])  # type: ignore[assignment]
        evals = [r["eval/d4rl_score"] for r in rows if "eval/d4rl_score" in r]
        cells.append(cell("on", evals[-1], f"{evals[0]:.1f} / {{:.1f}}") if evals else "-")
        iql_online = "-"
        for algo in args.baselines:
            lines: list[dict[str, float]] = read_json(out / f"{algo}_s{seed}.jsonl", [])  # type: ignore[assignment]
            runs = [r for r in lines if "phase" not in r]  # the offline evaluations; online ones say "phase"
            cells.append(cell(algo, next((r["d4rl_score"] for r in runs if r["steps"] == args.baseline_steps), None)))
            last = runs[-1] if runs else None
            eq = f"{{:.1f}} ({last['steps'] // 1000:.0f} k, {last['train_s']:.0f} s)" if last else ""
            cells.append(cell(f"{algo}_eq", last["d4rl_score"], eq) if last else "-")
            if algo == "iql":  # its online fine-tuning, from the equal-wall-clock policy
                online = [r["d4rl_score"] for r in lines if r.get("phase") == "online"]
                first = f"{last['d4rl_score']:.1f} / {{:.1f}}" if last else "- / {:.1f}"
                iql_online = cell("iql_on", online[-1], first) if online else "-"
        if "IQL online first / last" in columns:
            cells.append(iql_online)
        wall = times.get(f"off_s{seed}")
        cells.append(f"{wall:.0f} s" if wall else "-")
        print(f"| {seed} | " + " | ".join(cells) + " |")

    def mean_std(xs: list[float]) -> str:
        return "-" if not xs else f"{statistics.mean(xs):.1f} +- {statistics.stdev(xs) if len(xs) > 1 else 0.0:.1f}"

    cells = [mean_std(per["bc"]), mean_std(per["acc"]), mean_std(per["sel"]), "last " + mean_std(per["on"])]
    cells += [mean_std(per[f"{a}{eq}"]) for a in args.baselines for eq in ("", "_eq")]
    cells += ["last " + mean_std(per["iql_on"])] if "IQL online first / last" in columns else []
    cells += [""]
    print("| mean +- std | " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path)
    p.add_argument("--env", required=True, help="Gymnasium id the data was made with, e.g. Hopper-v4")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--config", default="uni_o4_offline_cpu")
    p.add_argument("--set", action="append", default=[], help="an override for every offline run, e.g. train.critics.precision=bf16")
    p.add_argument("--online-config", default="uni_o4_online")
    p.add_argument("--online-iterations", type=int, default=25, help="0: no online phase")
    p.add_argument("--online-name", default="on", help="online runs go to OUT/NAME_sSEED (another name: another budget beside)")
    p.add_argument("--eval-episodes", type=int, default=10, help="online evaluations: the offline evaluation's episode count")
    p.add_argument("--d3rlpy-python", default="/tmp/d3/bin/python", help="python of the d3rlpy environment ('' : no baselines)")
    p.add_argument("--baselines", nargs="+", choices=sorted(NAMES), default=["iql", "td3bc"], help="d3rlpy algorithms to run beside")
    p.add_argument("--baseline-steps", "--iql-steps", type=int, default=50_000, help="the baselines are also scored at this step count")
    p.add_argument("--baseline-seconds", "--iql-seconds", type=float, default=0.0, help="seconds per baseline (default: Uni-O4 offline's)")
    p.add_argument("--summary-only", action="store_true")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        for seed in args.seeds:
            seed_runs(args, seed)
    summarise(args)


if __name__ == "__main__":
    main()
