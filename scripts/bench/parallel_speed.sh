#!/usr/bin/env bash
# Tokens/s of config M (6 layers, hidden 384, 6 heads, seq 512, micro-batch 4, GPT-2 vocabulary)
# trained by `megatron train` on the bundled corpus: TP=1 on all cores, TP=2 and DP=2 as rank
# threads and as Open MPI processes (each rank cores/2 threads). Prints the median tokens/s of
# iterations 2..N of each layout and its ratio to TP=1.
# Usage: parallel_speed.sh [MEGATRON_BINARY] [ITERATIONS]
set -euo pipefail
shopt -s inherit_errexit  # a failed run inside $(...) stops the script
binary="$(realpath "${1:-.build/release/megatron}")" iterations="${2:-8}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1
"$binary" preprocess --input data/devils-dictionary/devils_dictionary.jsonl --output-prefix "$work/devil" \
    --vocab-file data/gpt2/gpt2-vocab.json --merge-file data/gpt2/gpt2-merges.txt --append-eod >/dev/null 2>&1
model=(--num-layers 6 --hidden-size 384 --num-attention-heads 6 --seq-length 512 --micro-batch-size 4
    --lr 1e-4 --train-iters "$iterations" --data-path "$work/devil_text_document" --vocab-file data/gpt2/gpt2-vocab.json
    --merge-file data/gpt2/gpt2-merges.txt --split 100,0,0 --log-interval 1 --eval-iters 0 --seed 1234)
median_tokens() {
    grep -o '"tokens_per_s":[0-9.]*' "$1" | tail -n +2 | cut -d: -f2 | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
run() {  # name, then the command's prefix and flags
    local name="$1"; shift
    "$@" --metrics-file "$work/$name.jsonl" >/dev/null || { echo "$name failed" >&2; return 1; }
    median_tokens "$work/$name.jsonl"
}
baseline=$(run tp1 "$binary" train "${model[@]}" --global-batch-size 4)
printf "%-28s %8s %6s\n" layout tokens/s ratio
printf "%-28s %8.0f %6.2f\n" "TP=1 (1 rank, all cores)" "$baseline" 1
for layout in "TP=2 threads:--tensor-model-parallel-size 2 --global-batch-size 4" \
              "DP=2 threads:--data-parallel-size 2 --global-batch-size 8" \
              "TP=2 mpirun -np 2:mpi --tensor-model-parallel-size 2 --global-batch-size 4" \
              "DP=2 mpirun -np 2:mpi --global-batch-size 8"; do
    name="${layout%%:*}" flags="${layout#*:}"
    if [[ "$flags" == mpi* ]]; then
        value=$(run x mpirun -np 2 --bind-to none "$binary" train "${model[@]}" ${flags#mpi })
    else
        value=$(run x "$binary" train "${model[@]}" $flags)
    fi
    rm -f "$work/x.jsonl"
    printf "%-28s %8.0f %6.2f\n" "$name" "$value" "$(awk -v a="$value" -v b="$baseline" 'BEGIN { print a / b }')"
done
