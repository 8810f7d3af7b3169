#!/usr/bin/env bash
# `megatron finetune` under Open MPI against one rank: a 2-layer BERT pretrained for 4 iterations
# on the bundled corpus, fine-tuned on the RACE fixture for 2 epochs on one rank and as 4 processes
# (TP 2 with sequence parallelism x DP 2 with ZeRO-1, 2 micro-batches per rank and step). Every
# step's loss (printed to 7 digits) must agree within 1e-5 relative and its gradient norm
# (3 decimals) within 2e-3, the validation accuracies must be the same; the checkpoint the 4
# processes save must fine-tune again on one rank.
# Usage: mpi_finetune.sh MEGATRON_BINARY WORK_DIR
set -euo pipefail
binary="$(realpath "$1")" work="$2"
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1
mpi=(mpirun --bind-to none)
vocab=(--tokenizer-type BertWordPieceLowerCase --vocab-file Tests/DataTests/Fixtures/wordpiece/uncased/vocab.txt)
tasks=Tests/FinetuningTests/Fixtures/tasks

"$binary" preprocess --input data/devils-dictionary/devils_dictionary.jsonl --output-prefix "$work/bert" \
    --split-sentences "${vocab[@]}" --workers 2 > /dev/null
"$binary" train --model-type bert "${vocab[@]}" --data-path "$work/bert_text_sentence" --split 949,50,1 \
    --num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 64 --max-position-embeddings 64 \
    --micro-batch-size 4 --global-batch-size 8 --lr 1e-3 --train-iters 4 --eval-iters 0 --save "$work/pretrained" > /dev/null
finetune=(finetune --task race --train-data "$tasks/race_train.jsonl" --valid-data "$tasks/race_valid.jsonl" "${vocab[@]}"
    --seq-length 64 --micro-batch-size 2 --global-batch-size 8 --epochs 2 --lr 2e-3 --log-interval 1)

"$binary" "${finetune[@]}" --pretrained-checkpoint "$work/pretrained" > "$work/single.log"
"${mpi[@]}" -np 4 "$binary" "${finetune[@]}" --pretrained-checkpoint "$work/pretrained" --tensor-model-parallel-size 2 \
    --sequence-parallel --use-distributed-optimizer --save "$work/finetuned" > "$work/tp2dp2.log"
grep -q "TP 2 x PP 1 x DP 2" "$work/tp2dp2.log" || { cat "$work/tp2dp2.log" >&2; exit 1; }
steps() { sed -n 's/.*| loss: \([^ ]*\) | .*| grad norm: \([^ ]*\) |.*/\1 \2/p' "$1"; }
[ "$(steps "$work/single.log" | wc -l)" -gt 0 ] || { cat "$work/single.log" >&2; exit 1; }
paste -d' ' <(steps "$work/single.log") <(steps "$work/tp2dp2.log") | awk '
    function absolute(x) { return x < 0 ? -x : x }
    NF != 4 { print "the runs logged different steps" > "/dev/stderr"; exit 1 }
    {
        loss = absolute($1 - $3) / absolute($1); norm = absolute($2 - $4)
        if (loss > worst) worst = loss
        if (loss > 1e-5 || norm > 2e-3) { printf "step %d: loss %s against %s, grad norm %s against %s\n", NR, $1, $3, $2, $4 > "/dev/stderr"; bad = 1 }
    }
    END { if (bad) exit 1; printf "finetune under mpirun -np 4, TP 2 SP x DP 2 ZeRO-1: %d steps, worst loss difference %g\n", NR, worst }'
diff <(grep "validation accuracy" "$work/single.log") <(grep "validation accuracy" "$work/tp2dp2.log")
grep "best validation accuracy" "$work/single.log"
test -s "$work/finetuned/iter_0000006/mp_rank_01/distrib_optim_dp_01.safetensors"
"$binary" "${finetune[@]}" --pretrained-checkpoint "$work/finetuned" --epochs 1 > "$work/again.log"
grep -q "fine-tuning $work/finetuned (iteration 6)" "$work/again.log" || { cat "$work/again.log" >&2; exit 1; }
echo "the checkpoint of TP 2 x DP 2 fine-tunes again on one rank"
