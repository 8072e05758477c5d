#!/usr/bin/env bash
# The main job: builds cloudwaste-stream (release) and runs its demo: an embedded Kafka (mock
# cluster), a scratch PostgreSQL, generated scanner traffic, and a readable summary.
# Extra arguments go to `cloudwaste-stream demo` (e.g. --records 200000, --keep-running).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product cloudwaste-stream 2>&1 | grep -E "error|warning: unre|Compiling cloudwaste|Build" || true
exec .build/release/cloudwaste-stream demo "$@"
