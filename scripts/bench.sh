#!/usr/bin/env bash
# The benchmark: release build, then `cloudwaste-stream bench` (1,000,000 records, 3 runs by
# default; extra arguments are passed on, e.g. --records 300000 --runs 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product cloudwaste-stream 2>&1 | grep -E "error|Build complete" || true
exec .build/release/cloudwaste-stream bench "$@"
