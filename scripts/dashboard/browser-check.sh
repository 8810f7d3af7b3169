#!/usr/bin/env bash
# The dashboard in a real browser: trains a small GPT on the bundled corpus with --metrics-file and
# --dashboard-port, opens the live page in headless Chromium (Debian's `chromium`) while it trains,
# then serves the finished run with `megatron dashboard`, waits for the plots, and reads the page
# (--dump-dom): every plot's data-points and data-last must equal what the metrics file says.
# With --screenshot FILE it also writes a PNG of the page (the README's picture).
#
#   scripts/dashboard/browser-check.sh [--screenshot docs/dashboard.png]   (MEGATRON=path/to/megatron)
set -euo pipefail
cd "$(dirname "$0")/../.."
screenshot=""
[ "${1:-}" = "--screenshot" ] && screenshot="$2"
B=${MEGATRON:-.build/release/megatron}
[ -x "$B" ] || { echo "no $B: swift build -c release --product megatron (or set MEGATRON)" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "no chromium (apt-get install chromium)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
chrome() { timeout 90 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=4000 "$@" 2>/dev/null; }
# The address a command printed as "> dashboard on http://...".
address() { for _ in $(seq 1 150); do
        url=$(grep -o 'dashboard on http://[^ ]*' "$1" | head -1 | cut -d' ' -f3 || true)
        [ -n "$url" ] && { echo "$url"; return 0; }
        sleep 0.2
    done; echo "no dashboard address in $1:" >&2; cat "$1" >&2; return 1; }

corpus=data/devils-dictionary/devils_dictionary.jsonl
$B tokenizer train --input $corpus --vocab-size 2048 --output "$work/tokenizer" > /dev/null
$B preprocess --input $corpus --output-prefix "$work/devil" --tokenizer-file "$work/tokenizer/tokenizer.json" --append-eod > /dev/null
metrics="$work/metrics.jsonl"
if [ -n "$screenshot" ]; then  # the README's picture shows the planner's prediction: calibrate this machine first (~40 s, cached)
    $B plan --cluster local --num-layers 2 --hidden-size 128 --num-attention-heads 4 --seq-length 64 --vocab-size 2048 \
        --micro-batch-size 8 --global-batch-size 16 > /dev/null
fi
echo "== train 60 iterations with --dashboard-port 0"
$B train --num-layers 2 --hidden-size 128 --num-attention-heads 4 --seq-length 64 --micro-batch-size 8 \
    --global-batch-size 16 --rampup-batch-size 8 8 320 --lr 2e-3 --min-lr 2e-4 --lr-decay-style cosine \
    --lr-warmup-iters 10 --train-iters 60 --clip-grad 1.0 --data-path "$work/devil_text_document" \
    --tokenizer-file "$work/tokenizer/tokenizer.json" --split 90,10,0 --log-interval 2 --eval-interval 10 \
    --eval-iters 2 --metrics-file "$metrics" --dashboard-port 0 > "$work/train.log" 2>&1 &
train=$!
live=$(address "$work/train.log")
echo "live page: $live"
chrome --dump-dom "$live" > "$work/live.html"
grep -q 'data-status="training' "$work/live.html" || grep -q 'data-status="finished' "$work/live.html" \
    || { echo "the live page did not render its panels" >&2; exit 1; }
wait $train || { tail -5 "$work/train.log" >&2; exit 1; }

echo "== the finished run with megatron dashboard"
$B dashboard --metrics-file "$metrics" --port 0 > "$work/dashboard.log" 2>&1 &
page=$(address "$work/dashboard.log")
chrome --dump-dom "$page" > "$work/page.html"
[ -z "$screenshot" ] || { chrome --window-size=1400,1500 --screenshot="$work/shot.png" "$page" && mv "$work/shot.png" "$screenshot" \
    && echo "screenshot: $screenshot"; }
python3 - "$metrics" "$work/page.html" <<'PYEOF'
import json, math, re, sys
metrics, page = sys.argv[1], open(sys.argv[2]).read()
training, validation = {}, {}
for line in open(metrics):
    record = json.loads(line)
    if record.get("record") == "header":
        continue
    (validation if "validation_loss" in record else training)[record["iteration"]] = record  # the later record wins
def points(records, key):
    return [records[i][key] for i in sorted(records)
            if isinstance(records[i].get(key), (int, float)) and not isinstance(records[i][key], bool)
            and math.isfinite(records[i][key])]
# Each plot's first series, as Sources/Dashboard/DashboardMetrics.swift draws it.
expected = {
    "loss": points(training, "lm_loss"), "perplexity": points(validation, "validation_ppl"),
    "learning-rate": points(training, "lr"), "batch-size": points(training, "global_batch_size"),
    "grad-norm": points(training, "grad_norm"), "loss-scale": points(training, "loss_scale"),
    "skipped": points(training, "skipped_iterations"), "time": points(training, "ms_per_iter"),
    "tokens": points(training, "tokens_per_s"), "tflops": points(training, "tflops"), "mfu": points(training, "mfu"),
    "memory": points(training, "peak_memory_bytes"),
}
found = {m.group(1): m for m in re.finditer(r'<svg class="plot" data-plot="([^"]+)" data-points="(\d+)"(?: data-last="([^"]+)")?', page)}
failures = []
for plot, values in expected.items():
    if plot not in found:
        failures.append(f"{plot}: no plot on the page"); continue
    count, last = int(found[plot].group(2)), found[plot].group(3)
    if count != len(values) or (values and float(last) != values[-1]):
        failures.append(f"{plot}: page {count} points, last {last}; file {len(values)} points, last {values[-1] if values else None}")
    else:
        print(f"{plot:14s} {count:3d} points, last {last} (as in the metrics file)")
if 'data-tp="1" data-pp="1" data-dp="1"' not in page:
    failures.append("no layout grid")
if len(set(points(training, "global_batch_size"))) < 2:
    failures.append("the batch-size ramp-up did not show")
for failure in failures:
    print("FAILED", failure)
sys.exit(1 if failures else 0)
PYEOF
echo "browser check passed"
