#!/usr/bin/env bash
# Counts the Swift runtime's reference-counting calls (swift_retain, swift_release, their _n and
# bridge-object forms, swift_isUniquelyReferenced) per record in bench-decode's measured pass, in
# all and by calling function, and malloc beside them. A count, not a time: a machine too noisy to
# time a change does not move it (it varies by about ±10 a record from run to run, because the
# random HMAC key changes which ids the pseudonym cache keeps).
#
#   bash scripts/tools/runtime-calls.sh [BINARY] [RECORDS]   (default .build/release/cloudwaste-stream, 5000)
#   CLOUDWASTE_TOP_CALLERS=N lists the N busiest callers (default 20).
#
# Needs perf (Debian's linux-perf) and root (uprobes on libswiftCore and libc). bench-decode runs
# with --passes 1 and --passes 3; the difference is two measured passes, so set-up (the traffic
# generator, the warm-up pass, the per-stage figures) cancels out. The totals come from
# `perf stat` (exact counts); the callers from `perf record` (a sample per call with its stack,
# which can lose samples: its warnings are shown). A caller is the second frame of the call's
# stack, which needs a kernel that unwinds frame pointers at a uprobe on a function's entry
# (Linux 6.11 and later); older kernels name the caller's caller.
set -euo pipefail
binary=${1:-.build/release/cloudwaste-stream}
records=${2:-5000}
command -v perf >/dev/null || { echo "runtime-calls: perf not found (apt-get install linux-perf)" >&2; exit 2; }
swift_core=$(ldd "$binary" | awk '/libswiftCore.so/ {print $3}')
libc=$(ldd "$binary" | awk '/libc.so.6/ {print $3}')
[[ -n $swift_core && -n $libc ]] || { echo "runtime-calls: $binary does not link libswiftCore and libc" >&2; exit 2; }

functions=(swift_retain swift_retain_n swift_release swift_release_n swift_bridgeObjectRetain swift_bridgeObjectRetain_n
           swift_bridgeObjectRelease swift_bridgeObjectRelease_n swift_isUniquelyReferenced_nonNull_native)
work=$(mktemp -d)
cleanup() {
  perf probe -q -d 'probe_libswiftCore:*' -d 'probe_libc:malloc' 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cleanup  # probes left by an earlier run may point into another build of the library
mkdir -p "$work"
events=()
for f in "${functions[@]}"; do
  perf probe -q -x "$swift_core" "$f"
  events+=(-e "probe_libswiftCore:$f")
done
perf probe -q -x "$libc" malloc
events+=(-e probe_libc:malloc)

for passes in 1 3; do
  perf stat -x, "${events[@]}" -o "$work/$passes.stat" "$binary" bench-decode --records "$records" --passes "$passes" >/dev/null
  perf record -q "${events[@]}" -g -o "$work/$passes.data" "$binary" bench-decode --records "$records" --passes "$passes" >/dev/null
  # One line per call: the event and the function that made it (the second frame of its stack).
  perf script -i "$work/$passes.data" -F event,ip,sym 2>/dev/null \
    | awk '/^ *probe/ { event = $1; getline; getline; sub(/^[ \t]*[0-9a-f]+ /, ""); print event, $0 }' \
    | sort | uniq -c > "$work/$passes.txt"
done

# Totals per record: perf stat's CSV lines are count,unit,event,...
awk -F, -v n="$records" '
  FNR == NR && $3 ~ /^probe/ { before[$3] = $1; next }
  $3 ~ /^probe/ { e = $3; sub(/^probe_[^:]*:/, "", e); d = ($1 - before[$3]) / (2 * n); per[e] = d; if (e != "malloc") total += d }
  END {
    printf "runtime_calls_per_record=%.1f", total
    for (e in per) printf " %s=%.1f", e, per[e]
    printf "\n"
  }' "$work/1.stat" "$work/3.stat"

echo "top callers (calls per record):"
awk -v n="$records" '
  FNR == NR { c = $1; $1 = ""; before[$0] = c; next }
  { c = $1; $1 = ""; d = (c - before[$0]) / (2 * n); if (d >= 1) printf "%8.1f %s\n", d, $0 }' "$work/1.txt" "$work/3.txt" \
  | sort -rn | head -${CLOUDWASTE_TOP_CALLERS:-20} | sed -E 's/\$s16CloudWasteStream//g; s/probe_libswiftCore://; s/probe_libc://' | cut -c1-160
