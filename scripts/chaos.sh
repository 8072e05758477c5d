#!/usr/bin/env bash
# The long variant of the chaos tests: kill -9 ten times during a run (CI does four), plus the
# fault tests. Needs a prior `swift build --build-tests` (scripts/test.sh does it).
set -euo pipefail
cd "$(dirname "$0")/.."
CLOUDWASTE_CHAOS_KILLS=${CLOUDWASTE_CHAOS_KILLS:-10} CLOUDWASTE_LOG_LEVEL=error \
  swift test --skip-build --no-parallel --filter "ExactlyOnceTests|FaultTests" 2>&1 | grep -vE "librdkafka.facility|^◇"
