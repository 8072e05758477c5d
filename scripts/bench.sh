#!/usr/bin/env bash
# The benchmark: release build, then `cloudwaste-stream bench` (1,000,000 records, 3 runs by
# default; extra arguments are passed on, e.g. --records 200000 --runs 1). With --python the
# plain Python consumer is measured too (its packages are installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [[ " $* " == *" --python "* ]] && ! python3 -c "import confluent_kafka, psycopg" 2>/dev/null; then
  python3 -m pip install -q confluent-kafka "psycopg[binary]"
fi
swift build -c release --product cloudwaste-stream 2>&1 | grep -E "error|Build complete" || true
exec .build/release/cloudwaste-stream bench "$@"
