#!/usr/bin/env bash
# Counts the Swift runtime's reference-counting calls (swift_retain, swift_release, their
# bridge-object forms, swift_isUniquelyReferenced) and malloc per record in bench-decode's
# measured pass, in all and by calling function. A count, not a time: it is the same from run to
# run whatever else the machine is doing, so it shows a change on a machine too noisy to time one.
#
#   bash scripts/tools/runtime-calls.sh [BINARY] [RECORDS]   (default .build/release/cloudwaste-stream, 5000)
#
# Needs perf (Debian's linux-perf) and root (uprobes on libswiftCore and libc). bench-decode runs
# twice, with --passes 1 and --passes 3; the difference is two measured passes, so set-up (the
# traffic generator, the warm-up pass, the per-stage figures) cancels out.
set -euo pipefail
binary=${1:-.build/release/cloudwaste-stream}
records=${2:-5000}
command -v perf >/dev/null || { echo "runtime-calls: perf not found (apt-get install linux-perf)" >&2; exit 2; }
swift_core=$(ldd "$binary" | awk '/libswiftCore.so/ {print $3}')
libc=$(ldd "$binary" | awk '/libc.so.6/ {print $3}')
[[ -n $swift_core && -n $libc ]] || { echo "runtime-calls: $binary does not link libswiftCore and libc" >&2; exit 2; }
functions=(swift_retain swift_release swift_bridgeObjectRetain swift_bridgeObjectRelease swift_isUniquelyReferenced_nonNull_native)
events=()
for f in "${functions[@]}"; do
  perf probe -q -x "$swift_core" "$f" 2>/dev/null || true
  events+=(-e "probe_libswiftCore:$f")
done
perf probe -q -x "$libc" malloc 2>/dev/null || true
events+=(-e probe_libc:malloc)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for passes in 1 3; do
  perf record -q "${events[@]}" -g -o "$work/$passes.data" "$binary" bench-decode --records "$records" --passes "$passes" >/dev/null 2>&1
  # One line per call: the event and the function that made it (the second frame of its stack).
  perf script -i "$work/$passes.data" -F event,ip,sym 2>/dev/null \
    | awk '/^ *probe/ { event = $1; getline; getline; sub(/^[ \t]*[0-9a-f]+ /, ""); print event, $0 }' \
    | sort | uniq -c > "$work/$passes.txt"
done
awk -v n="$records" -v top="$work/top.txt" '
  FNR == NR { c = $1; $1 = ""; before[$0] = c; next }
  { c = $1; $1 = ""; d = (c - before[$0]) / (2 * n); split($0, parts, ":"); byEvent[parts[2]] += d; total += d
    if (d >= 1) printf "%8.1f %s\n", d, $0 > top }
  END {
    printf "runtime_calls_per_record=%.1f", total
    for (e in byEvent) printf " %s=%.1f", e, byEvent[e]
    printf "\n"
  }' "$work/1.txt" "$work/3.txt"
echo "top callers (calls per record):"
sort -rn "$work/top.txt" | head -20 | sed -E 's/\$s16CloudWasteStream//g' | cut -c1-160
