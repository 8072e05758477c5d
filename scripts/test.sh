#!/usr/bin/env bash
# The whole test suite: topic contract check (JSON Schema), unit tests, and integration tests
# against a real PostgreSQL (started by the tests) and librdkafka's mock Kafka cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "== building"
swift build --build-tests 2>&1 | grep -vE "^\[[0-9]+/[0-9]+\]" || true
swift build --build-tests >/dev/null
echo "== topic contracts (JSON Schema draft 2020-12)"
python3 scripts/check-topic-examples.py
echo "== unit and integration tests"
export CLOUDWASTE_LOG_LEVEL=${CLOUDWASTE_LOG_LEVEL:-warning}
swift test --skip-build --no-parallel 2>&1 | grep -v "librdkafka.facility=COMMITFAIL"
exit "${PIPESTATUS[0]}"
