#!/bin/bash
# The whole chain on Slurm: (DANCE's experts →) a distillation split into SHARDS class shards → their merge →
# an evaluation split into EVAL_PARTS parts → their merge, each step waiting for the one before (afterok).
#   deploy/slurm/submit.sh OUT SHARDS EVAL_PARTS [distill options…] [-- eval options…]
# e.g. deploy/slurm/submit.sh runs/c100 8 5 --method dm+hdd --dataset cifar100 --ipc 50 -- --quick
# SBATCH_OPTS adds options to every sbatch (e.g. "--gres=gpu:1 --partition=gpu"); HYPERDISTILL names the binary.
# Prints the job ids; the merged set is OUT/merged/synset.safetensors, the evaluation OUT/eval/eval.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: submit.sh OUT SHARDS EVAL_PARTS [distill options…] [-- eval options…]}
shards=${2:?SHARDS}
parts=${3:?EVAL_PARTS}
shift 3
distill_opts=(); eval_opts=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do distill_opts+=("$1"); shift; done
[ "${1:-}" = "--" ] && { shift; eval_opts=("$@"); }
# shellcheck disable=SC2206
extra=(${SBATCH_OPTS:-})
dep=()
if printf '%s\n' "${distill_opts[@]}" | grep -q '^dance'; then
    # the shards share the experts trained once
    printf '%s\n' "${distill_opts[@]}" | grep -q '^--expert-dir' || distill_opts+=(--expert-dir "$out/experts")
    experts=$(sbatch --parsable "${extra[@]}" "$here/experts.sbatch" "${distill_opts[@]}" --out "$out")
    echo "experts $experts"
    dep=(--dependency="afterok:$experts")
fi
array=$(sbatch --parsable "${extra[@]}" "${dep[@]}" --array="0-$((shards - 1))" "$here/distill.sbatch" "$out" "${distill_opts[@]}")
merge=$(sbatch --parsable "${extra[@]}" --dependency="afterok:$array" "$here/merge.sbatch" "$out")
evals=$(sbatch --parsable "${extra[@]}" --dependency="afterok:$merge" --array="0-$((parts - 1))" "$here/eval.sbatch" "$out/merged/synset.safetensors" "$out/eval" "${eval_opts[@]}")
final=$(sbatch --parsable "${extra[@]}" --dependency="afterok:$evals" "$here/eval-merge.sbatch" "$out/eval")
echo "distill array $array, merge $merge, eval array $evals, eval merge $final"
