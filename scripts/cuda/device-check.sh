#!/usr/bin/env bash
# The device check of the CUDA backend, run ON a GPU machine (one `device` call; see README):
# every kernel against the CPU path, 20 training steps on the GPU against the same 20 on the CPU
# (fp32, and bf16 beside them), evaluate / generate / evaluate --task from the CPU run's checkpoint
# on both devices, and `bench --config 124M` in fp32 and bf16 next to PyTorch's own
# bf16 training step (torch.compile) on the same GPU. Needs .device-bundle/ from
# scripts/cuda/make-device-bundle.sh (.device-bundle/bundle.tar.xz); writes logs under $OUT
# (default /tmp/device-check).
#
#   bash scripts/cuda/device-check.sh [kernels|train|infer|bench|pytorch ...]   (default: all five)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/device-check}
mkdir -p "$OUT"
B=/tmp/megatron-bundle/bundle
rm -rf /tmp/megatron-bundle && mkdir -p /tmp/megatron-bundle
xz -dc .device-bundle/bundle.tar.xz | tar -C /tmp/megatron-bundle -xf - || { echo "no .device-bundle/bundle.tar.xz: run scripts/cuda/make-device-bundle.sh" >&2; exit 1; }
stages=("${@:-kernels train infer bench pytorch}")
stages=" ${stages[*]} "
cublas=$(find /usr/local /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$B/lib:$(dirname "${cublas:-/none/x}"):${LD_LIBRARY_PATH:-}"
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader) (cuBLAS: ${cublas:-not found})"
status=0
missing=$(ldd $B/megatron | grep "not found" || true)
[ -z "$missing" ] || { echo "the binary lacks libraries here: $missing" >&2; exit 1; }

if [[ $stages == *" kernels "* ]]; then
    echo "== kernels: GPU vs CPU"
    timeout 120 $B/megatron cuda-check 2>&1 | tee "$OUT/cuda-check.txt" || status=1
fi

if [[ $stages == *" train "* ]]; then
    common=(--num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 128 --micro-batch-size 16
        --global-batch-size 32 --lr 1e-3 --min-lr 1e-4 --lr-decay-style cosine --lr-warmup-iters 4 --train-iters 20
        --weight-decay 0.1 --clip-grad 1.0 --data-path $B/data/devil_text_document
        --tokenizer-file $B/data/tokenizer/tokenizer.json --split 95,5,0 --log-interval 1 --eval-interval 1000
        --eval-iters 1 --seed 1234)
    # name, device, precision, MEGATRON_CUDA_ASYNC
    for run in "cpu-fp32 cpu fp32 0" "cuda-fp32 cuda fp32 0" "cuda-fp32-async cuda fp32 1" "cuda-bf16 cuda bf16 0"; do
        set -- $run
        precision=(); [ "$3" = bf16 ] && precision=(--bf16)
        rm -f "$OUT/train-$1.jsonl"
        echo "== train 20 steps: $1"
        save=(); [ "$1" = cpu-fp32 ] && save=(--save "$OUT/checkpoint")
        MEGATRON_CUDA_ASYNC=$4 timeout 240 $B/megatron train "${common[@]}" --device "$2" ${precision[@]+"${precision[@]}"} ${save[@]+"${save[@]}"} \
            --metrics-file "$OUT/train-$1.jsonl" > "$OUT/train-$1.log" 2>&1 || { status=1; tail -5 "$OUT/train-$1.log"; }
        grep -E "iteration +20/" "$OUT/train-$1.log" | sed 's/ | number of.*tokens/ ... tokens/'
    done
    python3 - "$OUT" <<'PYEOF' || status=1
import json, sys
out = sys.argv[1]
def losses(name):
    rows = [json.loads(line) for line in open(f"{out}/train-{name}.jsonl")]
    return {r["iteration"]: r["lm_loss"] for r in rows if "lm_loss" in r}
cpu, gpu, fast, bf16 = (losses(n) for n in ("cpu-fp32", "cuda-fp32", "cuda-fp32-async", "cuda-bf16"))
worst = max(abs(gpu[i] - cpu[i]) / abs(cpu[i]) for i in cpu)
worst_async = max(abs(fast[i] - cpu[i]) / abs(cpu[i]) for i in cpu)
print("iteration  cpu fp32   cuda fp32  async fp32  cuda bf16")
for i in sorted(cpu):
    print(f"{i:9d}  {cpu[i]:.6f}   {gpu[i]:.6f}   {fast[i]:.6f}   {bf16[i]:.6f}")
print(f"fp32: largest relative loss difference GPU vs CPU over {len(cpu)} steps: {worst:.2e} (asynchronous: {worst_async:.2e})")
print(f"bf16 vs fp32 on the GPU at the last step: {abs(bf16[max(bf16)] - gpu[max(gpu)]) / gpu[max(gpu)]:.2e}")
sys.exit(0 if max(worst, worst_async) <= 1e-5 else 1)
PYEOF
fi

if [[ $stages == *" infer "* ]]; then
    echo "== inference from the CPU run's checkpoint, on the CPU and on the GPU"
    tok=(--tokenizer-file $B/data/tokenizer/tokenizer.json)
    for device in cpu cuda; do
        timeout 120 $B/megatron evaluate --load "$OUT/checkpoint" --data-path $B/data/devil_text_document "${tok[@]}" \
            --split 95,5 --micro-batch-size 8 --json --device $device > "$OUT/evaluate-$device.json" 2> "$OUT/evaluate-$device.err" || status=1
        timeout 120 $B/megatron generate --load "$OUT/checkpoint" "${tok[@]}" --prompt "LOVE, n." --prompt "A lawyer is" \
            --tokens-to-generate 40 --top-k 1 --json --device $device > "$OUT/generate-$device.json" 2> "$OUT/generate-$device.err" || status=1
        timeout 120 $B/megatron evaluate --load "$OUT/checkpoint" "${tok[@]}" --task lambada_openai \
            --task-data data/tasks/devils_lambada.jsonl --micro-batch-size 16 --json --device $device \
            > "$OUT/lambada-$device.json" 2> "$OUT/lambada-$device.err" || status=1
    done
    tail -n 2 "$OUT"/*-cuda.err
    python3 - "$OUT" <<'PYEOF' || status=1
import json, sys
out = sys.argv[1]
def lines(name):
    return [json.loads(line) for line in open(f"{out}/{name}.json").read().splitlines() if line.startswith("{")]
ok = True
for name, key in (("evaluate", "loss"), ("lambada", "perplexity")):
    cpu, gpu = lines(f"{name}-cpu")[-1], lines(f"{name}-cuda")[-1]
    rel = abs(gpu[key] - cpu[key]) / abs(cpu[key])
    extra = f", acc {cpu['acc']} / {gpu['acc']}" if "acc" in cpu else ""
    print(f"{name}: {key} cpu {cpu[key]:.8g} cuda {gpu[key]:.8g} (relative difference {rel:.2e}){extra}")
    ok = ok and rel <= 1e-5 and cpu.get("acc") == gpu.get("acc")
for cpu, gpu in zip(lines("generate-cpu"), lines("generate-cuda")):
    same = cpu["tokens"] == gpu["tokens"]
    print(f"generate (greedy) {cpu['prompt']!r}: {'same tokens' if same else 'DIFFERENT tokens'}: {gpu['text']!r}")
    ok = ok and same
sys.exit(0 if ok else 1)
PYEOF
fi

if [[ $stages == *" bench "* ]]; then
    for run in "fp32 0" "bf16 0" "fp32 1" "bf16 1"; do
        set -- $run
        precision=(); [ "$1" = bf16 ] && precision=(--bf16)
        echo "== megatron bench --config 124M --device cuda ${precision[*]-} (MEGATRON_CUDA_ASYNC=$2, MEGATRON_CUDA_PROFILE=1)"
        MEGATRON_CUDA_ASYNC=$2 MEGATRON_CUDA_PROFILE=1 timeout 180 $B/megatron bench --config 124M --device cuda --steps 10 \
            --warmup 3 ${precision[@]+"${precision[@]}"} > "$OUT/bench-$1-$2.txt" 2>&1 || status=1
        grep -E "ms/step|tokens/s|GEMM peak|MFU|precision" "$OUT/bench-$1-$2.txt"
        [ "$2" = 0 ] && grep -A 16 "CUDA profile" "$OUT/bench-$1-$2.txt"
    done
fi

if [[ $stages == *" pytorch "* ]]; then
    echo "== PyTorch on the same GPU (124M, bf16 autocast, torch.compile)"
    timeout 240 python3 $B/pytorch_bench.py --config 124M --device cuda --bf16 --compile --steps 10 --warmup 3 2>&1 \
        | tail -1 | tee "$OUT/bench-pytorch.txt"
    echo "== PyTorch on the same GPU (124M, fp32, eager)"
    timeout 120 python3 $B/pytorch_bench.py --config 124M --device cuda --steps 10 --warmup 3 2>&1 | tail -1 | tee -a "$OUT/bench-pytorch.txt"
fi
exit $status
