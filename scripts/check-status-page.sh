#!/usr/bin/env bash
# Renders the status page of a running demo in headless Chromium and checks the screenshot and
# the rendered DOM. Installs Debian's chromium if it is missing. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/check-helpers.sh
install_if_missing chromium chromium
start_demo 3000
# Until the generated traffic has landed and the page's database figures include it, then long
# enough for a few throughput samples (one every 5 s).
for _ in $(seq 1 60); do
  if curl -sf "http://127.0.0.1:$port/stats" | grep -q '"database":{'; then break; fi
  sleep 1
done
sleep 12
timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1400 \
  --screenshot="$out/status.png" "http://127.0.0.1:$port/" >/dev/null 2>&1
dom=$(timeout 120 chromium --headless --no-sandbox --disable-gpu --dump-dom "http://127.0.0.1:$port/" 2>/dev/null)
size=$(stat -c %s "$out/status.png" 2>/dev/null || echo 0)
passed=0; failed=0
check() { if eval "$2"; then passed=$((passed+1)); else failed=$((failed+1)); echo "status page: FAILED: $1"; fi; }
check "screenshot written (>20 kB)" '[ "$size" -gt 20000 ]'
check "title rendered" 'grep -q "<h1>CloudWaste Stream</h1>" <<<"$dom"'
check "ready" 'grep -q "class=\"ok\">ready" <<<"$dom"'
check "writers and their state" 'grep -Eq "<table id=\"writers\">.*<td>(idle|writing)</td>" <<<"$dom"'
check "throughput over the last hour has points and a time axis" '[ "$(grep -o "class=\"point\"" <<<"$dom" | wc -l)" -ge 2 ] && grep -q ">now</text>" <<<"$dom"'
check "cost-trend chart with axis ticks" '[ "$(grep -o "class=\"tick\"" <<<"$dom" | wc -l)" -ge 5 ] && grep -q "id=\"cost-trend-chart-USD\"" <<<"$dom"'
check "cost-trend bars carry month and value on hover" 'grep -Eq "<title>20[0-9]{2}-[0-9]{2} waste detected per month: [0-9.]+ USD</title>" <<<"$dom"'
check "month labels under the bars" 'grep -Eq ">20[0-9]{2}-[0-9]{2}</text>" <<<"$dom"'
check "rows stored in the last 7 days (recent demo data)" 'grep -Eq "<tr><td>ml_training_data</td><td>[1-9][0-9]*</td><td>[1-9]" <<<"$dom"'
check "per-topic rows" 'grep -q "<td>cloudwaste.scan-resources.v1</td>" <<<"$dom"'
check "dead letters by reason" 'grep -Eq "<table id=\"dead-letters\">.*<td>[a-z_]+" <<<"$dom"'
check "tables listed" 'grep -q "ml_training_data" <<<"$dom"'
check "cost-trend chart drawn" 'grep -q "<svg" <<<"$dom"'
[ -n "${CLOUDWASTE_KEEP_SCREENSHOT:-}" ] && cp "$out/status.png" "$CLOUDWASTE_KEEP_SCREENSHOT"
echo "status-page: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
