#!/usr/bin/env bash
# The Open MPI backend against the single-rank run: the communicator check under mpirun, then
# 5 training steps of TP 2 x DP 2 (with and without the distributed optimizer, and with sequence
# parallelism) as 4 processes and of TP 2 x PP 2 x DP 2 (3D, with and without it, and with
# sequence parallelism) as 8 processes, whose losses must equal one
# rank's (and their gradient norms) within 3e-7 relative; checkpoints saved by 4 and 8 processes at iteration 3 resumed
# under the same layout, and resharded to TP 1 x PP 1 and resumed on one rank, must continue with
# the same losses; a world that does not match the layout must fail with a clear error.
# Usage: mpi_equivalence.sh MEGATRON_BINARY WORK_DIR
set -euo pipefail
binary="$(realpath "$1")" work="$2"
here="$(dirname "$0")"
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1
mpi=(mpirun --bind-to none)

"${mpi[@]}" -np 4 "$binary" bench collectives --check-only

"$binary" preprocess --input data/devils-dictionary/devils_dictionary.jsonl --output-prefix "$work/devil" \
    --vocab-file data/gpt2/gpt2-vocab.json --merge-file data/gpt2/gpt2-merges.txt --append-eod --workers 2
train=(train --num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32 --micro-batch-size 2
    --global-batch-size 8 --lr 1e-3 --lr-decay-iters 5 --train-iters 5 --data-path "$work/devil_text_document"
    --vocab-file data/gpt2/gpt2-vocab.json --merge-file data/gpt2/gpt2-merges.txt --split 95,5,0
    --log-interval 1 --eval-interval 5 --eval-iters 1 --seed 1234)

"$binary" "${train[@]}" --metrics-file "$work/single.jsonl" > "$work/single.log"
"${mpi[@]}" -np 4 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --metrics-file "$work/tp2dp2.jsonl" > "$work/tp2dp2.log"
"${mpi[@]}" -np 4 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --use-distributed-optimizer \
    --metrics-file "$work/tp2dp2-zero.jsonl" > "$work/tp2dp2-zero.log"
echo -n "mpirun -np 4, TP 2 x DP 2: "; bash "$here/compare_metrics.sh" "$work/single.jsonl" "$work/tp2dp2.jsonl"
echo -n "mpirun -np 4, TP 2 x DP 2, distributed optimizer: "
bash "$here/compare_metrics.sh" "$work/single.jsonl" "$work/tp2dp2-zero.jsonl"
"${mpi[@]}" -np 4 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --sequence-parallel --use-distributed-optimizer \
    --metrics-file "$work/tp2dp2-sp.jsonl" > "$work/tp2dp2-sp.log"
echo -n "mpirun -np 4, TP 2 x DP 2, sequence parallel, distributed optimizer: "
bash "$here/compare_metrics.sh" "$work/single.jsonl" "$work/tp2dp2-sp.jsonl"

# Checkpoints: 3 iterations saved by TP 2 x DP 2 with ZeRO-1, resumed to 5 as is and after resharding.
"${mpi[@]}" -np 4 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --use-distributed-optimizer \
    --train-iters 3 --save "$work/ckpt" > "$work/save.log"
test -s "$work/ckpt/iter_0000003/mp_rank_01/distrib_optim_dp_01.safetensors"
"${mpi[@]}" -np 4 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --use-distributed-optimizer \
    --load "$work/ckpt" --metrics-file "$work/resumed-tp2dp2.jsonl" > "$work/resumed-tp2dp2.log"
echo -n "resumed under mpirun -np 4 from iteration 3: "
bash "$here/compare_metrics.sh" "$work/single.jsonl" "$work/resumed-tp2dp2.jsonl" 3e-7 4
"$binary" convert --input "$work/ckpt" --output "$work/ckpt-tp1" --target-tensor-model-parallel-size 1
"$binary" "${train[@]}" --load "$work/ckpt-tp1" --metrics-file "$work/resumed-tp1.jsonl" > "$work/resumed-tp1.log"
echo -n "resharded to TP 1 and resumed on one rank: "
bash "$here/compare_metrics.sh" "$work/single.jsonl" "$work/resumed-tp1.jsonl" 3e-7 4

# 3D: TP 2 x PP 2 x DP 2 as 8 processes (1F1B over 2 stages of one layer each).
"${mpi[@]}" -np 8 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 \
    --metrics-file "$work/3d.jsonl" > "$work/3d.log"
echo -n "mpirun -np 8, TP 2 x PP 2 x DP 2: "; bash "$here/compare_metrics.sh" "$work/single.jsonl" "$work/3d.jsonl"
"${mpi[@]}" -np 8 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 \
    --use-distributed-optimizer --metrics-file "$work/3d-zero.jsonl" > "$work/3d-zero.log"
echo -n "mpirun -np 8, TP 2 x PP 2 x DP 2, distributed optimizer: "
bash "$here/compare_metrics.sh" "$work/single.jsonl" "$work/3d-zero.jsonl"
"${mpi[@]}" -np 8 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 \
    --sequence-parallel --metrics-file "$work/3d-sp.jsonl" > "$work/3d-sp.log"
echo -n "mpirun -np 8, TP 2 x PP 2 x DP 2, sequence parallel: "; bash "$here/compare_metrics.sh" "$work/single.jsonl" "$work/3d-sp.jsonl"
"${mpi[@]}" -np 8 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 \
    --use-distributed-optimizer --train-iters 3 --save "$work/ckpt3d" > "$work/save3d.log"
test -s "$work/ckpt3d/iter_0000003/mp_rank_01_001/distrib_optim_dp_01.safetensors"
"$binary" convert --input "$work/ckpt3d" --output "$work/ckpt3d-single" --target-tensor-model-parallel-size 1 \
    --target-pipeline-model-parallel-size 1
"$binary" "${train[@]}" --load "$work/ckpt3d-single" --metrics-file "$work/resumed-3d.jsonl" > "$work/resumed-3d.log"
echo -n "saved by TP 2 x PP 2 x DP 2, resharded to one rank and resumed: "
bash "$here/compare_metrics.sh" "$work/single.jsonl" "$work/resumed-3d.jsonl" 3e-7 4

if "${mpi[@]}" -np 3 "$binary" "${train[@]}" --tensor-model-parallel-size 2 --data-parallel-size 2 > "$work/mismatch.log" 2>&1; then
    echo "mpirun -np 3 with a 4-rank layout should have failed" >&2; exit 1
fi
grep -q "mpirun started 3 ranks but the layout needs 4" "$work/mismatch.log" || { cat "$work/mismatch.log" >&2; exit 1; }
echo "mpirun -np 3 with a 4-rank layout: refused"
