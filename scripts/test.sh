#!/usr/bin/env bash
# The whole test suite: topic contracts (JSON Schema), unit tests, integration tests against a
# real PostgreSQL (started by the tests) and librdkafka's mock Kafka cluster, an interop stage
# against a real broker (Tansu) with a current librdkafka, the status page in headless Chromium,
# the alert rules in Prometheus, a short fuzzing run and a smoke run of the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "== building"
swift build --build-tests 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | grep -v "^\[" | tail -5
echo "== topic contracts (JSON Schema draft 2020-12)"
python3 scripts/check-topic-examples.py
echo "== unit and integration tests"
export CLOUDWASTE_LOG_LEVEL=${CLOUDWASTE_LOG_LEVEL:-error}
# Bounded: a hung test fails the run with its name instead of eating CI's whole time budget.
mkdir -p .state
set +e
timeout -k 30 "${CLOUDWASTE_TEST_TIMEOUT:-45m}" swift test --skip-build --no-parallel 2>&1 | tee .state/swift-test.log \
    | grep --line-buffered -vE "librdkafka.facility|^◇|^↳ (///|Testing Library|Target Platform)"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    if [ "$status" -eq 124 ]; then
        echo "swift test did not finish within ${CLOUDWASTE_TEST_TIMEOUT:-45m}; tests started but not passed:"
        grep -oE "Test [A-Za-z0-9_]+\(" .state/swift-test.log | sort | uniq -u | head
        pkill -f cloudwaste-streamPackageTests.xctest || true
    fi
    echo "swift test failed (exit $status); full output in .state/swift-test.log"
    exit "$status"
fi
echo "== interop: a real broker (Tansu) with a current librdkafka (2.16, from PyPI) instead of Debian's 2.0.2"
bash scripts/interop-tansu.sh
echo "== status page in headless Chromium"
bash scripts/check-status-page.sh
echo "== alert rules: promtool unit tests, then Prometheus scraping a running daemon"
bash scripts/check-alert-rules.sh
echo "== fuzzing the decoder and anonymizer (short run; scripts/fuzz.sh 600 for a long one)"
bash scripts/fuzz.sh "${CLOUDWASTE_FUZZ_SECONDS:-20}" 2>&1 | tail -4
echo "== benchmark smoke run (scripts/bench.sh for the real one)"
.build/debug/cloudwaste-stream bench-decode --records 2000 --write-values .state/bench-decode-values.bin | tail -1
python3 scripts/tools/check-values-file.py .state/bench-decode-values.bin 2000
.build/debug/cloudwaste-stream bench --records 3000 --runs 1 --latency-seconds 2 --large-records 10 --state-dir .state/bench-smoke 2>&1 | grep -E "^bench:|^\|"
