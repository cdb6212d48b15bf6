#!/usr/bin/env bash
# A rescue on a SLURM allocation: Ray across the allocated nodes, rescue on the head node.
#   sbatch examples/cluster/slurm_rescue.sh path/to/train.py path/to/cfg.yaml
#SBATCH --job-name=rescue
#SBATCH --nodes=2                   # the head node and one worker node
#SBATCH --ntasks-per-node=1         # one Ray node per SLURM node
#SBATCH --cpus-per-task=8           # CPUs each Ray node offers to runs
#SBATCH --time=04:00:00
#SBATCH --output=rescue-%j.log

set -euo pipefail
script="${1:?usage: sbatch slurm_rescue.sh TRAIN.py CFG.yaml}"
config="${2:?usage: sbatch slurm_rescue.sh TRAIN.py CFG.yaml}"
port=6379
# Ray clusters started with `ray start` use token authentication: every node and the driver need
# the same token (e.g. RAY_AUTH_TOKEN_PATH on the shared file system; see Ray's token-auth docs).

# The first node of the allocation is the head; the others join it.
mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head="${nodes[0]}"
head_ip="$(srun --nodes=1 --ntasks=1 -w "$head" hostname --ip-address | awk '{print $1}')"
address="$head_ip:$port"

# --block keeps each Ray node in the foreground of its srun step, so SLURM stops it with the job.
srun --nodes=1 --ntasks=1 -w "$head" \
    ray start --head --node-ip-address="$head_ip" --port="$port" \
    --num-cpus="$SLURM_CPUS_PER_TASK" --include-dashboard=false --block &
sleep 20  # the head's GCS must be up before workers join

for node in "${nodes[@]:1}"; do
    srun --nodes=1 --ntasks=1 -w "$node" \
        ray start --address="$address" --num-cpus="$SLURM_CPUS_PER_TASK" --block &
done
sleep 20

# Results, checkpoints and the Optuna study go to a shared file system that every node reaches.
out="${RESCUE_OUT:-$PWD/rescue-runs/slurm-$SLURM_JOB_ID}"
# rescue exits 0 when a run finished healthy (or was rescued), 3 when nothing could be
# rescued, 2 on bad input; its last line says why. The job's exit code is rescue's.
set +e
rescue "$script" --config "$config" --address "$address" --out "$out"
code=$?
set -e
echo "rescue exited with $code; report: $out/report.json"
exit "$code"
