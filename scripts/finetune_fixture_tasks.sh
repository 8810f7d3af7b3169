#!/usr/bin/env bash
# Pretrains a 2-layer BERT for 10 iterations on the bundled corpus, then fine-tunes it for 6
# epochs on the fixture tasks (RACE, MNLI) with and without dropout, and prints each run's best
# validation accuracy. Usage: scripts/finetune_fixture_tasks.sh [path/to/megatron]
set -euo pipefail
bin=${1:-.build/debug/megatron}
out=$(mktemp -d)
vocab=Tests/DataTests/Fixtures/wordpiece/uncased/vocab.txt
$bin preprocess --input data/devils-dictionary/devils_dictionary.jsonl --output-prefix $out/bert --split-sentences \
    --tokenizer-type BertWordPieceLowerCase --vocab-file $vocab --workers 2 > /dev/null
$bin train --model-type bert --tokenizer-type BertWordPieceLowerCase --vocab-file $vocab --data-path $out/bert_text_sentence \
    --split 949,50,1 --num-layers 2 --hidden-size 64 --num-attention-heads 2 --seq-length 64 --max-position-embeddings 64 \
    --micro-batch-size 8 --global-batch-size 16 --lr 1e-3 --train-iters 10 --eval-iters 0 --save $out/ckpt > /dev/null
for task in race mnli; do
  for dropout in 0 0.1; do
    line=$($bin finetune --task $task --train-data Tests/FinetuningTests/Fixtures/tasks/${task}_train.jsonl \
        --valid-data Tests/FinetuningTests/Fixtures/tasks/${task}_valid.jsonl --pretrained-checkpoint $out/ckpt \
        --tokenizer-type BertWordPieceLowerCase --vocab-file $vocab --seq-length 64 --micro-batch-size 4 --epochs 6 \
        --lr 2e-3 --hidden-dropout $dropout --attention-dropout $dropout | grep "validation accuracy" | tail -1)
    echo "$task dropout $dropout: $line"
  done
done
rm -rf $out
