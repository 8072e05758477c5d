#!/usr/bin/env bash
# The shipped alert rules (config/prometheus/): promtool checks them and runs their unit tests,
# then Debian's Prometheus scrapes a running demo daemon on loopback with the rules loaded, and
# the target must be up, every rule must load and evaluate, and the one alert this machine must
# raise (librdkafka 2.0.2 is older than 2.3.0) must fire. Installs Debian's prometheus if it is
# missing (without starting its service). Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/check-helpers.sh
install_if_missing promtool --no-install-recommends prometheus
rules=config/prometheus/cloudwaste-alerts.yml
promtool check rules "$rules" | grep -E "SUCCESS|FAILED"
(cd config/prometheus && promtool test rules cloudwaste-alerts.test.yml) | grep -E "SUCCESS|FAILED" | sed 's/^ */unit tests: /'

start_demo 2000
prom_port=$(free_port)
cp "$rules" "$out/"
cat > "$out/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [cloudwaste-alerts.yml]
scrape_configs:
  - job_name: cloudwaste
    static_configs: [{targets: ["127.0.0.1:$port"]}]
YAML
prometheus --config.file="$out/prometheus.yml" --storage.tsdb.path="$out/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$out/prometheus.log" 2>&1 &
also_stop=$!
api() { curl -sf "http://127.0.0.1:$prom_port/api/v1/$1"; }
# Until the target was scraped and every rule evaluated a few times (1 s each).
for _ in $(seq 1 60); do
  if api 'query?query=up' 2>/dev/null | grep -q '"value":\[[0-9.]*,"1"\]'; then break; fi
  sleep 1
done
sleep 5
passed=0; failed=0
check() { if eval "$2"; then passed=$((passed+1)); else failed=$((failed+1)); echo "alert rules: FAILED: $1"; fi; }
targets=$(api targets || true)
ruleset=$(api rules || true)
alerts=$(api alerts || true)
watermark=$(api 'query?query=cloudwaste_window_watermark_seconds' || true)
check "the daemon is a healthy scrape target" 'grep -q "\"health\":\"up\"" <<<"$targets"'
check "all 9 rules loaded" '[ "$(grep -o "\"type\":\"alerting\"" <<<"$ruleset" | wc -l)" -eq 9 ]'
check "every rule evaluates without error" '! grep -q "\"health\":\"err\"" <<<"$ruleset" && [ "$(grep -o "\"health\":\"ok\"" <<<"$ruleset" | wc -l)" -ge 9 ]'
# The librdkafka the daemon loaded, from its own build-info metric: below 2.3.0 the alert must fire.
librdkafka=$(curl -sf "http://127.0.0.1:$port/metrics" | sed -n 's/^cloudwaste_build_info{librdkafka="\([^"]*\)".*/\1/p')
old=$([[ "$librdkafka" =~ ^(0|1)\.|^2\.[0-2]\. ]] && echo yes || echo no)
firing=$(grep -q '"alertname":"CloudWasteOldLibrdkafka".*"state":"firing"' <<<"$alerts" && echo yes || echo no)
check "the old-librdkafka alert follows the scraped build info (librdkafka $librdkafka)" '[ -n "$librdkafka" ] && [ "$old" = "$firing" ]'
check "the watermark the stalled-month rule watches is scraped" 'grep -q "\"__name__\":\"cloudwaste_window_watermark_seconds\"" <<<"$watermark"'
check "no other alert fires on a healthy daemon" '[ -z "$(grep -o "\"alertname\":\"[A-Za-z]*\"" <<<"$alerts" | grep -v CloudWasteOldLibrdkafka)" ]'
echo "alert rules: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
  echo "--- prometheus log (tail)"; tail -20 "$out/prometheus.log"
  echo "--- rules"; head -c 3000 <<<"$ruleset"; echo
  exit 1
fi
