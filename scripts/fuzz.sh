#!/usr/bin/env bash
# Fuzzes the record decoder and the anonymizer with libFuzzer for SECONDS (default 60).
#
#   scripts/fuzz.sh [SECONDS]
#
# Builds Fuzz/DecoderFuzzTarget.swift with Sources/CloudWasteStream/{Records,Anonymization}/*.swift (and Support/StableHash.swift, ByteSink.swift, ShortBytes.swift)
# into .build-fuzz/decoder-fuzzer (swiftc directly, not SwiftPM), replays Fuzz/regressions/, then
# fuzzes from the seeds in Fuzz/corpus/. New corpus entries go to a scratch directory outside the
# repository; crashes, leaks, timeouts and OOMs go to .build-fuzz/crashes/. Exits non-zero when a
# regression still fails or the run finds a crash, leak, timeout or OOM, and prints the reproducer.
#
# Environment: SWIFTC (compiler, default /opt/swift/usr/bin/swiftc or swiftc on PATH),
# FUZZ_SCRATCH (corpus output directory, default a new mktemp -d),
# CLOUDWASTE_FUZZ_IGNORE (known issue ids the target steps over, see Fuzz/README.md),
# FUZZ_EXTRA_ARGS (more libFuzzer flags, e.g. "-seed=1").
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
    echo "usage: scripts/fuzz.sh [SECONDS]   (a whole number of seconds, default 60)" >&2
    exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/.build-fuzz
bin=$out/decoder-fuzzer
crashes=$out/crashes
mkdir -p "$crashes"

if [[ -n ${SWIFTC:-} ]]; then swiftc=$SWIFTC
elif [[ -x /opt/swift/usr/bin/swiftc ]]; then swiftc=/opt/swift/usr/bin/swiftc
else swiftc=$(command -v swiftc || true); fi
[[ -n $swiftc ]] || { echo "fuzz: swiftc not found (set SWIFTC)" >&2; exit 2; }
toolbin=$(dirname "$swiftc")

# --- build --------------------------------------------------------------------------------------
shopt -s nullglob
sources=("$root"/Sources/CloudWasteStream/Records/*.swift "$root"/Sources/CloudWasteStream/Anonymization/*.swift
         "$root"/Sources/CloudWasteStream/Support/StableHash.swift "$root"/Sources/CloudWasteStream/Support/ByteSink.swift
         "$root"/Sources/CloudWasteStream/Support/ShortBytes.swift
         "$root"/Fuzz/*.swift)
shopt -u nullglob
stale=0
if [[ ! -x $bin ]]; then stale=1
else
    for f in "${sources[@]}" "$root/scripts/fuzz.sh"; do [[ $f -nt $bin ]] && { stale=1; break; }; done
fi
build=(
    "$swiftc" -sanitize=fuzzer,address -parse-as-library -O -g
    -module-name CloudWasteStream -swift-version 6
    -enable-upcoming-feature InternalImportsByDefault -enable-upcoming-feature ExistentialAny
    -I "$root/Sources/COpenSSL" -lcrypto
    -module-cache-path "$out/module-cache"
    "${sources[@]}" -o "$bin.tmp"
)
if [[ -x $toolbin/ld.lld || -x $toolbin/lld ]]; then build+=(-use-ld=lld); fi
if (( stale )); then
    echo "== building $bin"
    echo "   ${build[*]}" | sed "s|$root/||g"
    ( cd "$out" && "${build[@]}" ) 2>&1 | grep -vE "^/usr/bin/ld.gold: warning: Cannot export local symbol" || true
    [[ -x $bin.tmp ]] || { echo "fuzz: build failed" >&2; exit 2; }
    mv "$bin.tmp" "$bin"
fi

# --- runtime settings ---------------------------------------------------------------------------
# Crashes are reported by libFuzzer/ASan, not the Swift backtracer (whose helper thread reads memory
# ASan flags, and which can wait for a terminal).
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:handle_abort=1:handle_sigill=1:allocator_may_return_null=0}
if [[ -x $toolbin/llvm-symbolizer ]]; then export ASAN_SYMBOLIZER_PATH=$toolbin/llvm-symbolizer; fi
export CLOUDWASTE_FUZZ_REGIONS=${CLOUDWASTE_FUZZ_REGIONS:-$root/config/regions.json}

report() {  # report ARTIFACT...
    for a in "$@"; do
        echo
        echo "REPRODUCER: $a"
        echo "  base64: $(base64 -w0 < "$a")"
        echo "  replay: SWIFT_BACKTRACE=enable=no ${bin#"$root"/} ${a#"$root"/}"
        echo "  keep:   cp ${a#"$root"/} Fuzz/regressions/<what-it-breaks>.bin"
    done
}

failed=0

# --- regressions --------------------------------------------------------------------------------
shopt -s nullglob
regressions=()
for f in "$root"/Fuzz/regressions/*; do [[ $f == *.md ]] || regressions+=("$f"); done
shopt -u nullglob
if (( ${#regressions[@]} )); then
    echo "== replaying ${#regressions[@]} input(s) from Fuzz/regressions/"
    for f in "${regressions[@]}"; do
        if log=$("$bin" -runs=1 "$f" 2>&1); then
            echo "   pass  ${f#"$root"/}"
        else
            echo "   FAIL  ${f#"$root"/}: $(grep -m1 -E "Fatal error|ERROR:" <<<"$log" || echo "exit status non-zero")"
            failed=1
        fi
    done
fi

# --- fuzzing ------------------------------------------------------------------------------------
scratch=${FUZZ_SCRATCH:-$(mktemp -d "${TMPDIR:-/tmp}/cloudwaste-fuzz-corpus.XXXXXX")}
mkdir -p "$scratch"
log=$out/fuzz-$(date -u +%Y%m%dT%H%M%SZ).log
before=$(ls -1 "$crashes")
echo "== fuzzing for ${seconds}s (seeds: Fuzz/corpus, new inputs: $scratch, log: ${log#"$root"/})"
set +e
# shellcheck disable=SC2086
"$bin" \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=5 -detect_leaks=1 \
    -dict="$root/Fuzz/decoder.dict" -artifact_prefix="$crashes/" -print_final_stats=1 \
    ${FUZZ_EXTRA_ARGS:-} "$scratch" "$root/Fuzz/corpus" 2>&1 | tee "$log" | grep -vE "^#[0-9]+[[:space:]]+(NEW|REDUCE)|# Uses: [0-9]+$"
status=${PIPESTATUS[0]}
set -e

new=()
while IFS= read -r name; do [[ -n $name ]] && new+=("$crashes/$name"); done < <(comm -13 <(sort <<<"$before") <(ls -1 "$crashes" | sort))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
echo "== ${execs:-?} executions, ${rate:-?} exec/s, corpus now $(ls -1 "$scratch" | wc -l) new + $(ls -1 "$root/Fuzz/corpus" | wc -l) seed inputs"

if (( status != 0 )) || (( ${#new[@]} )); then
    kind=$(grep -m1 -oE "ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer): [a-z -]+|Fatal error: .*" "$log" || echo "exit status $status")
    echo "FUZZ FAILURE: $kind"
    if (( ${#new[@]} )); then report "${new[@]}"; else echo "(no artifact written; see $log)"; fi
    exit 1
fi
if (( failed )); then
    echo "FUZZ FAILURE: a regression input in Fuzz/regressions/ still fails (see above)"
    exit 1
fi
echo "== no crash, leak or timeout"
