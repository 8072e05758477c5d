# Sourced by the checks that need a running daemon (status page, alert rules) or Debian tools
# (chromium, prometheus, stunnel4). Not a script of its own.

# A TCP port free on loopback a moment ago.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# install_if_missing COMMAND APT-ARGUMENTS…: installs the packages when COMMAND is missing,
# without letting their maintainer scripts start a service (policy-rc.d), on Debian 12 as root.
install_if_missing() {
  local command=$1 created_policy=0
  shift
  command -v "$command" >/dev/null && return 0
  echo "installing $* (for $(basename "$0"))…"
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
  if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

# start_demo RECORDS: `demo --keep-running` with RECORDS generated records, HTTP on a free port,
# in a scratch folder; returns once /readyz answers (at most two minutes). Sets bin, port, out and
# demo; everything is stopped and removed at exit, with the processes listed in also_stop.
start_demo() {
  bin=${CLOUDWASTE_BIN:-.build/debug/cloudwaste-stream}
  port=$(free_port)
  out=$(mktemp -d)
  chmod 755 "$out"  # the scratch PostgreSQL runs as the postgres user
  "$bin" demo --records "$1" --keep-running --http-port "$port" --state-dir "$out/state" >"$out/demo.log" 2>&1 &
  demo=$!
  also_stop=""
  trap 'for p in $also_stop; do kill "$p" 2>/dev/null; done; kill -INT $demo 2>/dev/null; wait 2>/dev/null || true; rm -rf "$out"' EXIT
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
    sleep 1
  done
}
