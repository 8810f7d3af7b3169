#!/usr/bin/env bash
# Builds libmegatron_cuda.so (the CUDA kernels and cuBLAS calls under --device cuda) from cuda/*.cu.
#
#   scripts/cuda/build-kernels.sh [OUTPUT_DIR]     (default: .build/release)
#
# nvcc comes from $NVCC, else the PATH, else a CUDA 13.0 toolchain unpacked from PyPI wheels
# (nvidia-cuda-nvcc and friends) into .build/cuda-toolchain; no GPU is needed to build. The
# library links the CUDA runtime statically and loads cuBLAS when it starts, so it needs only a
# driver and libcublas.so.13 where it runs. Targets sm_90 (Hopper) plus PTX for newer GPUs;
# set CUDA_ARCHS (e.g. "80 90") for others.
set -euo pipefail
cd "$(dirname "$0")/../.."
output="${1:-.build/release}"
toolchain=.build/cuda-toolchain
nvcc="${NVCC:-}"
if [ -z "$nvcc" ] && command -v nvcc >/dev/null 2>&1; then nvcc=$(command -v nvcc); fi
if [ -z "$nvcc" ]; then
    if [ ! -x "$toolchain/nvidia/cu13/bin/nvcc" ]; then
        python3 -m pip --version >/dev/null 2>&1 || { echo "error: no nvcc, and no pip to fetch one (apt-get install python3-pip)" >&2; exit 1; }
        echo "fetching the CUDA 13.0 compiler from PyPI into $toolchain"
        # pip download, then unpack by hand: nothing is installed into a Python (PEP 668 forbids that on Debian).
        python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$toolchain/wheels" \
            "nvidia-cuda-nvcc==13.0.88" "nvidia-nvvm==13.0.88" "nvidia-cuda-crt==13.0.88" \
            "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cccl==13.0.85"
        python3 -c '
import glob, os, sys, zipfile
root = sys.argv[1]
for wheel in glob.glob(os.path.join(root, "wheels", "*.whl")):
    with zipfile.ZipFile(wheel) as archive:
        for entry in archive.infolist():
            path = archive.extract(entry, root)
            mode = entry.external_attr >> 16
            if mode: os.chmod(path, mode & 0o777)
' "$toolchain"
        rm -rf "$toolchain/wheels"
    fi
    nvcc="$toolchain/nvidia/cu13/bin/nvcc"
fi
cuda_root=$(cd "$(dirname "$nvcc")/.." && pwd)
archs="${CUDA_ARCHS:-90}"
gencode=()
for arch in $archs; do gencode+=("-gencode=arch=compute_$arch,code=sm_$arch"); done
last=${archs##* }
gencode+=("-gencode=arch=compute_$last,code=compute_$last")
mkdir -p "$output"
"$nvcc" "${gencode[@]}" -O3 -std=c++17 -shared -Xcompiler -fPIC -L"$cuda_root/lib" -L"$cuda_root/lib64" \
    -o "$output/libmegatron_cuda.so.tmp" cuda/runtime.cu cuda/elementwise.cu cuda/softmax.cu cuda/attention_bf16.cu
mv "$output/libmegatron_cuda.so.tmp" "$output/libmegatron_cuda.so"
echo "built $output/libmegatron_cuda.so ($("$nvcc" --version | tail -1), sm $archs)"
