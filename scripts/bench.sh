#!/usr/bin/env bash
# The benchmark: release build, then `cloudwaste-stream bench` (1,000,000 records, 3 runs by
# default; extra arguments are passed on, e.g. --records 200000 --runs 1). With --python the
# plain Python consumer is measured too (its packages are installed here); with --pinned
# PostgreSQL gets CPU 0 to itself and everything else the other CPUs (run both set-ups).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [[ " $* " == *" --python "* ]] && ! python3 -c "import confluent_kafka, psycopg" 2>/dev/null; then
  python3 -m pip install -q confluent-kafka "psycopg[binary]"
fi
swift build -c release --product cloudwaste-stream 2>&1 | grep -E "error|Build complete" || true
# Heap allocations per record: a counter preloaded into the daemon (and usable with bench-decode:
# LD_PRELOAD=.build/malloc-counter.so .build/release/cloudwaste-stream bench-decode).
if command -v cc >/dev/null && cc -O2 -shared -fPIC -o .build/malloc-counter.so scripts/tools/malloc-counter.c; then
  export CLOUDWASTE_MALLOC_COUNTER="$PWD/.build/malloc-counter.so"
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed for --pinned"; }
exec .build/release/cloudwaste-stream bench "$@"
