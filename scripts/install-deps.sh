#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12, as root. Idempotent and quick
# when everything is already there.
set -euo pipefail
packages=(librdkafka-dev libpq-dev libssl-dev postgresql pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The cluster that Debian's postgresql package may create and start is not used: the project
# starts its own scratch servers on free ports.
if ! python3 -c "import jsonschema" 2>/dev/null; then
  python3 -m pip install -q jsonschema
fi
command -v swift >/dev/null || { echo "swift not found: install the Swift 6 toolchain (this machine kind ships it at /opt/swift)"; exit 1; }
