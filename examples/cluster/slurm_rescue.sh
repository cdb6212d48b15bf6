#!/usr/bin/env bash
# A rescue on a SLURM allocation: Ray across the allocated nodes, rescue on the head node.
#   sbatch examples/cluster/slurm_rescue.sh path/to/train.py path/to/cfg.yaml
#SBATCH --job-name=rescue
#SBATCH --nodes=2                   # the head node and one worker node
#SBATCH --ntasks-per-node=1         # one Ray node per SLURM node
#SBATCH --cpus-per-task=8           # CPUs each Ray node offers to runs
#SBATCH --time=04:00:00
#SBATCH --output=rescue-%j.log
#SBATCH --requeue                   # a preempted or timed-out job may run again...
#SBATCH --signal=B:TERM@120         # ...after SIGTERM to this script 2 minutes before the end

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
# A requeued job keeps its id, so it finds its folder and resumes it.
out="${RESCUE_OUT:-$PWD/rescue-runs/slurm-$SLURM_JOB_ID}"
if [[ -f "$out/report.json" ]]; then
    run=(rescue resume "$out" "$script" --config "$config" --address "$address")
else
    run=(rescue "$script" --config "$config" --address "$address" --out "$out")
fi
# rescue exits 0 when a run finished healthy (or was rescued), 3 when nothing could be
# rescued, 2 on bad input, 143 when SIGTERM stopped it (the folder resumes); its last line
# says why. In the background so that this script can pass SLURM's SIGTERM on.
"${run[@]}" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM
set +e
wait "$pid"
code=$?
if [[ $code -ne 0 ]] && kill -0 "$pid" 2>/dev/null; then  # wait was cut short by the trap
    wait "$pid"
    code=$?
fi
set -e
echo "rescue exited with $code; report: $out/report.json"
if [[ $code -eq 143 ]]; then
    scontrol requeue "$SLURM_JOB_ID"  # runs this script again, which resumes $out
fi
exit "$code"
