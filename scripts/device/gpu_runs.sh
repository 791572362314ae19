#!/bin/sh
# The GPU measurements still open in docs/benchmarks/simulation.md, "MuJoCo Warp backend", in one go
# on a GPU machine (after scripts/device/install.sh). Writes everything under $OUT.
#   MuJoCo Warp throughput at 1024 / 4096 / 8192 robots, then a 4096-robot PPO run on the GPU
#   (task, networks and buffer on CUDA) with the command that made it.
set -eu
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD/.device/site:$PWD" PYTHONUNBUFFERED=1
out=${OUT:-runs/device}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -m unio4.cli sim bench --backend mujoco_warp --num-envs-list 1024 4096 8192 --steps 200 2>&1 | tee "$out/sim_bench.txt"
iterations=${ITERATIONS:-300}
echo "unio4 train online --backend mujoco_warp --num-envs 4096 --iterations $iterations --set train.device=cuda" > "$out/ppo_command.txt"
python3 -m unio4.cli train online --backend mujoco_warp --num-envs 4096 --iterations "$iterations" \
  --set train.device=cuda --set train.eval_interval=25 --out "$out/ppo" 2>&1 | tail -40 | tee "$out/ppo.txt"
