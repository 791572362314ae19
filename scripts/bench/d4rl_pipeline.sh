#!/usr/bin/env bash
# One row of the D4RL-style table in docs/benchmarks/uni-o4-parts.md, "Uni-O4 on regenerated D4RL-style
# data (CPU-scaled)", on CPU:
#   Uni-O4 offline (uni_o4_offline_cpu) -> online fine-tuning (uni_o4_online), and d3rlpy's IQL and
#   TD3+BC on the same file with the same evaluation episodes.
# Usage: scripts/bench/d4rl_pipeline.sh DATA.h5 ENV_ID OUT_DIR [BASELINE_STEPS] [ONLINE_ITERATIONS]
# Needs: make install (the unio4 venv) and a d3rlpy venv at $D3RLPY_PYTHON (see scripts/bench/README.md).
set -euo pipefail
data=$1 env=$2 out=$3 baseline_steps=${4:-50000} online_iterations=${5:-25}
d3rlpy_python=${D3RLPY_PYTHON:-/tmp/d3/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$out"
.venv/bin/unio4 train offline --data "$data" --config uni_o4_offline_cpu --out "$out/uni_o4" --env "$env" --eval-episodes 10 \
  | tee "$out/offline.txt"
.venv/bin/unio4 train online --env "$env" --init "$out/uni_o4/checkpoints/offline.pt" --out "$out/online" \
  --iterations "$online_iterations" --eval-episodes 10 | tee "$out/online.txt"
for algo in iql td3bc; do
  "$d3rlpy_python" scripts/bench/d3rlpy_baselines.py "$data" --env "$env" --algo "$algo" --steps "$baseline_steps" --episodes 10 \
    2>/dev/null | tee "$out/$algo.json"
done
