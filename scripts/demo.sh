#!/usr/bin/env bash
# The quick start: on a fresh machine, install what is missing, build, train a tokenizer on the
# bundled corpus (The Devil's Dictionary), curate it (planted duplicates removed, the wikitext-style
# task's text removed) into Megatron's .bin/.idx, train a small GPT for a few minutes with
# the validation perplexity printed as it falls, save a checkpoint, print generated samples and
# score the model on three zero-shot tasks built from the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
start=$(date +%s)

need=()
pkg-config --exists openblas 2>/dev/null || need+=(libopenblas-dev)
# oneDNN (the bf16 GEMM): Debian ships no dnnl.pc, so look for its header too.
pkg-config --exists dnnl 2>/dev/null || [ -f /usr/include/oneapi/dnnl/dnnl.h ] || need+=(libdnnl-dev)
pkg-config --exists ompi-c 2>/dev/null || need+=(libopenmpi-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then echo "please install: ${need[*]} (or run as root)" >&2; exit 1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

swift build -c release --product megatron 2>&1 | tail -1
B=.build/release/megatron
OUT=${DEMO_DIR:-out/demo}
ITERS=${DEMO_ITERS:-160}
# DEMO_PRECISION=bf16 (or fp16) trains in that precision.
case "${DEMO_PRECISION:-fp32}" in
    fp32) PRECISION=() ;;
    bf16) PRECISION=(--bf16) ;;
    fp16) PRECISION=(--fp16) ;;
    *) echo "DEMO_PRECISION must be fp32, bf16 or fp16, got ${DEMO_PRECISION}" >&2; exit 1 ;;
esac
rm -rf "$OUT" && mkdir -p "$OUT"
corpus=data/devils-dictionary/devils_dictionary.jsonl

echo "== tokenizer: byte-level BPE, 4096 tokens, trained on the corpus"
$B tokenizer train --input $corpus --vocab-size 4096 --output "$OUT/tokenizer"
echo "== curate: plant duplicates, then filter, dedup, decontaminate against the wikitext-style task, preprocess"
# The raw corpus: the dictionary, 30 entries again as they are, 30 more with one word changed.
raw="$OUT/raw.jsonl"
cat $corpus > "$raw"
head -n 30 $corpus >> "$raw"
sed -n '400,429p' $corpus | sed 's/ the / a /' >> "$raw"
cat > "$OUT/curate.json" <<CONFIG
{"output_dir": "$OUT/curated", "tokenizer_file": "$OUT/tokenizer/tokenizer.json",
 "datasets": [{"name": "devil", "input": "$raw", "weight": 1}],
 "filter": {"min_words": 3, "min_stop_words": 0, "min_alphabetic_words": 0.5, "max_symbol_word_ratio": 0.5},
 "dedup": {"threshold": 0.8},
 "decontaminate": {"task_data": ["data/tasks/devils_wikitext.jsonl"], "min_piece_length": 100}}
CONFIG
$B curate run "$OUT/curate.json"
data_path=$(cat "$OUT/curated/data_path.txt")
prefix="$OUT/curated/devil_text_document"
echo "== train: 4 layers, hidden 256, 4 heads, seq 128, batch 32, $ITERS iterations, ${DEMO_PRECISION:-fp32}"
echo "   (open the \"dashboard on http://...\" address it prints to watch it train; DEMO_DASHBOARD_PORT=8080 fixes the port)"
$B train --num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 128 \
    --micro-batch-size 16 --global-batch-size 32 --lr 1e-3 --min-lr 1e-4 --lr-decay-style cosine \
    --lr-warmup-iters 16 --train-iters "$ITERS" --weight-decay 0.1 --adam-beta2 0.95 --clip-grad 1.0 \
    --data-path $data_path --tokenizer-file "$OUT/tokenizer/tokenizer.json" --split 95,5,0 \
    --log-interval 10 --eval-interval 20 --eval-iters 4 --save "$OUT/checkpoint" \
    --metrics-file "$OUT/metrics.jsonl" --dashboard-port "${DEMO_DASHBOARD_PORT:-0}" --seed 1234 \
    ${PRECISION[@]+"${PRECISION[@]}"}
echo "== the run's dashboard stopped with it; see it again with:"
echo "   $B dashboard --metrics-file $OUT/metrics.jsonl"
echo "== evaluate the checkpoint on the validation split"
$B evaluate --load "$OUT/checkpoint" --data-path "$prefix" \
    --tokenizer-file "$OUT/tokenizer/tokenizer.json" --split 95,5 --micro-batch-size 8 --json
echo "== samples"
for prompt in "LOVE, n." "POLITICS, n." "A lawyer is"; do
    $B generate --load "$OUT/checkpoint" --tokenizer-file "$OUT/tokenizer/tokenizer.json" \
        --prompt "$prompt" --tokens-to-generate 40 --top-k 20 --temperature 0.8 --seed 7
    echo "--"
done
echo "== zero-shot tasks built from the corpus (data/tasks, scripts/data/make_tasks.py)"
lambada=$($B evaluate --load "$OUT/checkpoint" --tokenizer-file "$OUT/tokenizer/tokenizer.json" --task lambada_openai \
    --task-data data/tasks/devils_lambada.jsonl --micro-batch-size 16 --json)
definitions=$($B evaluate --load "$OUT/checkpoint" --tokenizer-file "$OUT/tokenizer/tokenizer.json" --task multiple_choice \
    --task-data data/tasks/devils_definitions.jsonl --micro-batch-size 16 --json)
wikitext=$($B evaluate --load "$OUT/checkpoint" --tokenizer-file "$OUT/tokenizer/tokenizer.json" --task wikitext \
    --task-data data/tasks/devils_wikitext.jsonl --micro-batch-size 8 --json)
echo "$lambada"
echo "$definitions"
echo "$wikitext"
first=$(grep validation_ppl "$OUT/metrics.jsonl" | head -1 | sed 's/.*"validation_ppl":\([0-9.e+-]*\).*/\1/')
last=$(grep validation_ppl "$OUT/metrics.jsonl" | tail -1 | sed 's/.*"validation_ppl":\([0-9.e+-]*\).*/\1/')
field() { echo "$1" | sed "s/.*\"$2\":\([0-9.e+-]*\).*/\1/"; }
echo "== validation perplexity: $first (first evaluation) -> $last (last); last-word accuracy $(field "$lambada" acc)," \
    "definition choice accuracy $(field "$definitions" acc) (chance 0.25), wikitext-style word perplexity" \
    "$(field "$wikitext" word_perplexity); wall time $(( $(date +%s) - start )) s"
