#!/usr/bin/env bash
# Compares the losses of two --metrics-file outputs: every iteration's lm_loss and grad_norm and
# every validation_loss must agree within a relative tolerance (default 3e-7; the runs CI compares
# differed by up to 7.2e-8 on AMD machines and 2.0e-7 on an Intel Emerald Rapids with OpenBLAS's
# Cooperlake kernels, the norms under Open MPI's reduction order; 9.8e-7 with its SSE3 kernels,
# which megatron no longer runs on a CPU with AVX2), and both files must hold the same records. With FIRST_ITERATION (a resumed run against a straight one), only the lm_loss
# of iterations from FIRST_ITERATION on are compared.
# Usage: compare_metrics.sh REFERENCE.jsonl CANDIDATE.jsonl [TOLERANCE] [FIRST_ITERATION]
set -euo pipefail
reference="$1" candidate="$2" tolerance="${3:-3e-7}" first="${4:-}"
losses() {
    # One "iteration kind value" line per record that carries a loss.
    awk -v first="$first" '{
        iteration = ""; kind = ""; value = ""
        if (match($0, /"iteration":[0-9]+/)) iteration = substr($0, RSTART + 12, RLENGTH - 12)
        if (match($0, /"lm_loss":[-0-9.eE+]+/)) { kind = "lm_loss"; value = substr($0, RSTART + 10, RLENGTH - 10) }
        else if (match($0, /"validation_loss":[-0-9.eE+]+/)) { kind = "validation_loss"; value = substr($0, RSTART + 18, RLENGTH - 18) }
        if (first != "" && (kind != "lm_loss" || iteration + 0 < first + 0)) kind = ""
        if (kind != "") print iteration, kind, value
        # The gradient norm: a constant gradient-scale bug cancels out of the losses, not out of it.
        if (kind == "lm_loss" && match($0, /"grad_norm":[-0-9.eE+]+/)) print iteration, "grad_norm", substr($0, RSTART + 12, RLENGTH - 12)
    }' "$1"
}
paste -d' ' <(losses "$reference") <(losses "$candidate") | awk -v tolerance="$tolerance" -v a="$reference" -v b="$candidate" '
    {
        if ($1 != $4 || $2 != $5) { printf "record %d differs: %s %s in %s, %s %s in %s\n", NR, $1, $2, a, $4, $5, b; bad = 1; next }
        difference = $3 - $6; if (difference < 0) difference = -difference
        scale = $3 < 0 ? -$3 : $3
        relative = scale > 0 ? difference / scale : difference
        if (relative > worst) worst = relative
        if (relative > tolerance) { printf "iteration %s %s: %s vs %s (relative %.3g)\n", $1, $2, $3, $6, relative; bad = 1 }
        count++
    }
    END {
        if (count == 0) { print "no losses to compare"; exit 1 }
        if (bad) exit 1
        printf "%d losses and norms agree within %s (worst relative difference %.3g)\n", count, tolerance, worst
    }'
[ "$(losses "$reference" | wc -l)" = "$(losses "$candidate" | wc -l)" ] || { echo "$reference and $candidate hold different numbers of losses" >&2; exit 1; }
