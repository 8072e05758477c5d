#!/usr/bin/env bash
# The whole test suite: topic contracts (JSON Schema), unit tests, integration tests against a
# real PostgreSQL (started by the tests) and librdkafka's mock Kafka cluster, the status page in
# headless Chromium, a short fuzzing run and a smoke run of the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "== building"
swift build --build-tests 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | grep -v "^\[" | tail -5
echo "== topic contracts (JSON Schema draft 2020-12)"
python3 scripts/check-topic-examples.py
echo "== unit and integration tests"
export CLOUDWASTE_LOG_LEVEL=${CLOUDWASTE_LOG_LEVEL:-error}
swift test --skip-build --no-parallel 2>&1 | grep -vE "librdkafka.facility|^◇|^↳ (///|Testing Library|Target Platform)"
echo "== status page in headless Chromium"
bash scripts/check-status-page.sh
echo "== fuzzing the decoder and anonymizer (short run; scripts/fuzz.sh 600 for a long one)"
bash scripts/fuzz.sh "${CLOUDWASTE_FUZZ_SECONDS:-20}" 2>&1 | tail -4
echo "== benchmark smoke run (scripts/bench.sh for the real one)"
.build/debug/cloudwaste-stream bench --records 3000 --runs 1 --latency-seconds 2 --state-dir .state/bench-smoke 2>&1 | grep -E "^bench:|^\|"
