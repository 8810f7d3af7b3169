#!/usr/bin/env bash
# Prepares .device-bundle/bundle.tar.xz for scripts/cuda/device-check.sh on a GPU machine that has no Swift
# toolchain: the megatron binary (Swift standard library linked in, Haswell code: AVX2 and FMA, i.e. x86-64-v3; Swift's -target-cpu has no x86-64-v3), the kernel
# library for sm_90, the shared libraries the binary links that such a machine may lack
# (OpenBLAS, oneDNN, Open MPI), and a small tokenized corpus. Run here, then carry the folder:
#
#   scripts/cuda/make-device-bundle.sh
#   device run: bash scripts/cuda/device-check.sh   (carry: .device-bundle)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/opt/swift/usr/bin"
scratch=.build-device
bundle=$scratch/bundle    # packed into .device-bundle/bundle.tar.xz (a call carries at most 64 MiB)
grep -qx "/.device-bundle/" .git/info/exclude 2>/dev/null || echo "/.device-bundle/" >> .git/info/exclude
MEGATRON_TARGET_CPU=haswell swift build -c release --product megatron --static-swift-stdlib --scratch-path $scratch 2>&1 | tail -1
scripts/cuda/build-kernels.sh $scratch/release
rm -rf $bundle && mkdir -p $bundle/lib $bundle/data
cp $scratch/release/megatron $scratch/release/libmegatron_cuda.so $bundle/
strip $bundle/megatron
# Every shared library outside the C runtime that the binary needs.
ldd $bundle/megatron | awk '/=> \// {print $3}' | grep -vE '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' \
    | while read -r library; do cp -L "$library" $bundle/lib/; done
# The corpus, tokenized with a small BPE trained on it (as the demo does).
corpus=data/devils-dictionary/devils_dictionary.jsonl
$bundle/megatron tokenizer train --input $corpus --vocab-size 4096 --output $bundle/data/tokenizer > /dev/null
$bundle/megatron preprocess --input $corpus --output-prefix $bundle/data/devil --tokenizer-file $bundle/data/tokenizer/tokenizer.json \
    --append-eod > /dev/null
cp scripts/reference/pytorch_bench.py $bundle/
rm -rf .device-bundle && mkdir -p .device-bundle
tar -C $scratch -cf - bundle | xz -T2 -6 > .device-bundle/bundle.tar.xz
echo "$(du -sh $bundle | cut -f1) packed into $(du -sh .device-bundle/bundle.tar.xz | cut -f1): .device-bundle/bundle.tar.xz"
