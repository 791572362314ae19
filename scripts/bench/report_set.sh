#!/usr/bin/env bash
# The report set (docs/uni-o4.md, "How defaults are chosen and results reported"): the six D4RL-style
# task/levels plus Hopper-v5 medium, regenerated with generator seed 10, training seeds 10-12. Per row,
# Uni-O4 with the chosen defaults (uni_o4_offline_cpu -> the task's online preset) against d3rlpy's IQL
# and TD3+BC at equal wall clock, then the authors' switches CPU-scaled (uni_o4_paper_offline_cpu -> the
# task's paper online preset). Run it once, after the defaults are fixed; it resumes what a call left.
# Usage: scripts/bench/report_set.sh OUT_DIR [ROW ...]   (default: every row, in the order below)
# Env: ONLINE_ITERATIONS (default 489 = 1 M steps at 2048 per update; 100 = 205 k), D3RLPY_PYTHON.
set -euo pipefail
out=${1:?usage: scripts/bench/report_set.sh OUT_DIR [ROW ...]}
shift
online_iterations=${ONLINE_ITERATIONS:-489}
d3rlpy_python=${D3RLPY_PYTHON:-/tmp/d3/bin/python}
export OMP_NUM_THREADS=1
# row: env, level, data preset (the tuning set's size for that row), online preset's task suffix
declare -A ROWS=(
  [hopper-medium]="Hopper-v4 medium small hopper_medium"
  [hopper-medium-replay]="Hopper-v4 medium-replay d4rl hopper_medium"
  [halfcheetah-medium]="HalfCheetah-v4 medium d4rl halfcheetah_medium"
  [halfcheetah-medium-replay]="HalfCheetah-v4 medium-replay d4rl halfcheetah_medium_replay"
  [walker2d-medium]="Walker2d-v4 medium small walker2d_medium"
  [walker2d-medium-replay]="Walker2d-v4 medium-replay d4rl walker2d_medium"
  [hopper-v5-medium]="Hopper-v5 medium small hopper_medium"
)
ORDER=(hopper-medium hopper-medium-replay halfcheetah-medium halfcheetah-medium-replay walker2d-medium walker2d-medium-replay hopper-v5-medium)
rows=("${@:-${ORDER[@]}}")
for row in "${rows[@]}"; do
  [[ -v "ROWS[$row]" ]] || { echo "report_set.sh: unknown row '$row' (expected one of: ${ORDER[*]})" >&2; exit 2; }
done
for row in "${rows[@]}"; do
  read -r env level preset task <<< "${ROWS[$row]}"
  data="$out/data/$row.h5"
  mkdir -p "$out/data"
  [ -f "$data" ] || .venv/bin/unio4 data generate --env "$env" --level "$level" --config "$preset" --set data.seed=10 \
    --cache-dir "$out/data/sac-$env" -o "$data"
  .venv/bin/python scripts/bench/uni_o4_seeds.py "$data" --env "$env" --out "$out/$row/defaults" --seeds 10 11 12 \
    --online-config "uni_o4_online_$task" --online-iterations "$online_iterations" --d3rlpy-python "$d3rlpy_python"
  .venv/bin/python scripts/bench/uni_o4_seeds.py "$data" --env "$env" --out "$out/$row/paper" --seeds 10 11 12 \
    --config uni_o4_paper_offline_cpu --online-config "uni_o4_paper_online_$task" --online-iterations "$online_iterations" \
    --d3rlpy-python ''
done
