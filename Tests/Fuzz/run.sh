#!/usr/bin/env bash
# Builds epipe's libFuzzer drivers (Tests/Fuzz, -sanitize=fuzzer,address, in .build/fuzz: incremental)
# and runs each target in turn for a bounded time, then prints per target the executions, the corpus
# and whether it crashed. Exit 0: every target ran without a crash, hang or out-of-memory (or the
# toolchain cannot build libFuzzer targets: said in one line, nothing run); 1: a target found one
# (the input is saved in .build/fuzz/artifacts/<target>/; turn it into a regression input under
# Tests/Fuzz/<target>/regressions/, see Tests/Fuzz/README.md); 2: the build failed.
#
#   Tests/Fuzz/run.sh [SECONDS] [TARGET...]     (SECONDS default $FUZZ_SECONDS, else 300)
#
# Each target starts from its seeds (Tests/Fuzz/<target>/corpus), its regressions and what earlier
# runs on this machine found (.build/fuzz/corpus/<target>, where new inputs go). Limits per input:
# -timeout=10 s (a hang), -rss_limit_mb=2048 and -malloc_limit_mb=1100 (no single allocation over 1.1 GB;
# the seeds and regressions are first replayed alone with -malloc_limit_mb=256).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-${FUZZ_SECONDS:-300}}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(tiff omexml markers manifest csv)
SWIFT=${SWIFT:-swift}
SCRATCH=$ROOT/.build/fuzz
FLAGS=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld)
mkdir -p "$SCRATCH"

# --- can this toolchain build a libFuzzer target at all? ---------------------------------------------
probe_dir=$SCRATCH/probe
mkdir -p "$probe_dir"
cat > "$probe_dir/probe.swift" <<'EOF'
@_cdecl("LLVMFuzzerTestOneInput") public func probe(_ data: UnsafeRawPointer, _ size: Int) -> CInt { 0 }
EOF
SWIFTC=${SWIFTC:-$(dirname "$(command -v "$SWIFT" || echo swift)")/swiftc}
[ -x "$SWIFTC" ] || SWIFTC=swiftc
if ! "$SWIFTC" -parse-as-library -sanitize=fuzzer,address -use-ld=lld "$probe_dir/probe.swift" -o "$probe_dir/probe" > "$probe_dir/log" 2>&1; then
    why=$(grep -m1 -i error "$probe_dir/log" || head -1 "$probe_dir/log")
    echo "fuzz: SKIPPED: this toolchain cannot build libFuzzer targets ($SWIFTC -sanitize=fuzzer,address -use-ld=lld failed: ${why:-no output}); Swift's libFuzzer needs a Linux toolchain from swift.org"
    exit 0
fi

# --- build (incremental: only what changed since the last fuzz build) -----------------------------------
t0=$(date +%s)
if ! $SWIFT build -c debug --package-path Tests/Fuzz --scratch-path "$SCRATCH" "${FLAGS[@]}" -Xswiftc -O > "$SCRATCH/build.log" 2>&1; then
    echo "fuzz: the fuzz build failed (swift build --package-path Tests/Fuzz --scratch-path .build/fuzz); the last lines of $SCRATCH/build.log:" >&2
    grep -E "error|warning: unable" "$SCRATCH/build.log" | head -20 >&2 || tail -20 "$SCRATCH/build.log" >&2
    exit 2
fi
BIN=$($SWIFT build -c debug --package-path Tests/Fuzz --scratch-path "$SCRATCH" "${FLAGS[@]}" -Xswiftc -O --show-bin-path)
echo "fuzz: drivers built in $(( $(date +%s) - t0 )) s ($BIN)"

# --- run ----------------------------------------------------------------------------------------------
export SWIFT_BACKTRACE=enable=no       # libFuzzer and ASan report crashes themselves
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1:allocator_may_return_null=0}
# the inputs are written to files there (the parsers read paths): memory, not disk, when there is /dev/shm
EPIPE_FUZZ_TMP=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/epipe-fuzz.XXXXXX")
export EPIPE_FUZZ_TMP
trap 'rm -rf "$EPIPE_FUZZ_TMP"' EXIT
total_runs=0; failed=()
for t in "${TARGETS[@]}"; do
    exe=$BIN/fuzz-$t
    [ -x "$exe" ] || { echo "fuzz: no target $t (known: tiff omexml markers manifest csv)" >&2; exit 2; }
    work=$SCRATCH/corpus/$t; art=$SCRATCH/artifacts/$t; log=$SCRATCH/logs/$t.log
    mkdir -p "$work" "$art" "$(dirname "$log")"
    seeds=("$ROOT/Tests/Fuzz/$t/corpus")
    [ -d "$ROOT/Tests/Fuzz/$t/regressions" ] && seeds+=("$ROOT/Tests/Fuzz/$t/regressions")
    before=$(ls "$work" | wc -l)
    # the seeds and regressions first, alone and with tighter limits: none may allocate over 256 MB
    if ! "$exe" -runs=0 -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=256 -artifact_prefix="$art/replay-" "${seeds[@]}" > "$log.replay" 2>&1; then
        what=$(grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer)|DEFECT|Fatal error|SUMMARY' "$log.replay" | cut -c1-240)
        echo "fuzz $t: FOUND A PROBLEM replaying its seeds and regressions (256 MB per allocation): ${what:-see $log.replay}"
        failed+=("$t"); continue
    fi
    # what earlier runs saved goes to old/, so that what is found now stands alone
    find "$art" -maxdepth 1 -type f | grep -q . && mkdir -p "$art/old" && find "$art" -maxdepth 1 -type f -exec mv {} "$art/old/" \;
    "$exe" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1100 -max_len=16384 \
        -print_final_stats=1 -artifact_prefix="$art/" "$work" "${seeds[@]}" > "$log" 2>&1
    rc=$?
    runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
    [ -n "$runs" ] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    runs=${runs:-0}
    secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+')
    after=$(ls "$work" | wc -l)
    nseeds=$(find "${seeds[@]}" -type f ! -name '*.expect' | wc -l)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    total_runs=$((total_runs + runs))
    found=$(ls "$art" 2>/dev/null | grep -E '^(crash|timeout|oom|leak)-' | head -1)
    if [ $rc -ne 0 ] || [ -n "$found" ]; then
        what=$(grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer)|DEFECT|Fatal error|SUMMARY' "$log" | cut -c1-240)
        echo "fuzz $t: FOUND A PROBLEM after $runs runs: ${what:-exit $rc}"
        echo "fuzz $t:   input saved as $art/${found:-?}; log $log"
        failed+=("$t")
    else
        echo "fuzz $t: $runs runs in ${secs:-$SECONDS_PER_TARGET} s, no crash, hang or out-of-memory; $cov; corpus $nseeds seeds + $after found ($((after - before)) new this run)"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${#TARGETS[@]} targets, $total_runs runs, problems in: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, $total_runs runs, $SECONDS_PER_TARGET s each, no crash"
