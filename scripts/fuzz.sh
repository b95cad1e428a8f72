#!/usr/bin/env bash
# A fuzzing campaign: every cargo-fuzz target (or the ones named) for SECONDS each, then one
# table — executions, coverage, corpus size and crashes per target. Each target starts from
# the kept corpus (fuzz/corpus/TARGET) and grows its working corpus in
# target/fuzz/corpus/TARGET, which later campaigns continue from (promote a minimized sample
# into fuzz/corpus with cargo fuzz cmin). Crashes land in target/fuzz/artifacts/TARGET —
# keep each as fuzz/regressions/TARGET/NAME-OF-THE-BUG.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]       e.g. scripts/fuzz.sh 3600 rtp_stream
#
# Installs cargo-fuzz when it is missing. It runs on the stable toolchain with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz passes flags stable rustc only takes that way), with debug
# assertions on (integer overflow is a crash) and without a sanitizer (the code under test
# is safe Rust). Exits 1 if any target crashed, hung or ran out of memory.
#
# Never pause a running campaign (kill -STOP, to benchmark on a quiet machine): -timeout
# counts wall time, so the input being run when it resumes is reported as a hang. Replay a
# reported timeout (target/x86_64-unknown-linux-gnu/release/TARGET ARTIFACT) before
# believing it.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(rtp_packet rtp_session rtp_stream audio_session capture wav events keys sip ng card)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

logs=target/fuzz/logs
mkdir -p "$logs"
echo "fuzz: building the targets"
RUSTC_BOOTSTRAP=1 cargo fuzz build --fuzz-dir fuzz -O -a -s none >"$logs/build.log" 2>&1 || {
    tail -n 30 "$logs/build.log"
    exit 1
}
status=0
rows=()
for t in "${targets[@]}"; do
    log=$logs/$t.log
    work=target/fuzz/corpus/$t
    artifacts=target/fuzz/artifacts/$t
    mkdir -p "$work" "$artifacts"
    echo "fuzz: $t for ${secs} s (log: $log)"
    if RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" --fuzz-dir fuzz -O -a -s none "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
    fi
    execs=$(grep -oP 'stat::number_of_executed_units:\s*\K\d+' "$log" | tail -n 1 || true)
    cov=$(grep -oP '\bcov: \K\d+' "$log" | tail -n 1 || true)
    corpus=$(find "$work" "fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
    crashes=$(find "$artifacts" -type f 2>/dev/null | wc -l)
    rows+=("$(printf '%-12s %12s %8s %8s %8s  %s' "$t" "${execs:-?}" "${cov:-?}" "$corpus" "$crashes" "$result")")
done
echo
printf '%-12s %12s %8s %8s %8s  %s\n' target executions cov corpus crashes result
printf '%s\n' "${rows[@]}"
exit $status
