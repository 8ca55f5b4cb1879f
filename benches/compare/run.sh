#!/usr/bin/env bash
# The chain-of-routers ping scenario (8 routers, 1,000 pings) in ns-3 3.44 (from PyPI) and in
# reachlab, in one run: prints each side's wall time, events/s and the per-ping ratios.
# Usage: bash benches/compare/run.sh   (from the repository; CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${NS3_VENV:-${CARGO_TARGET_DIR:-target}/ns3-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q "ns3==3.44.post0"
pings=1000

echo "== ns-3: 8 routers, $pings pings" >&2
ns3_out="$("$venv/bin/python" benches/compare/ns3_chain.py "$pings" 2>/dev/null)"
echo "$ns3_out" >&2
ns3_json="$(echo "$ns3_out" | tail -n 1)"

echo "== reachlab: the same scenario (cargo bench --bench ns3_chain)" >&2
summary="$(cargo bench --bench ns3_chain -- --warm-up-time 1 --measurement-time 3 2>&1 \
  | tee /dev/stderr | sed -n 's/^SUMMARY //p' | tail -n 1)"

python3 - "$ns3_json" "$summary" <<'PY'
import json, sys
ns3 = json.loads(sys.argv[1])
rl = json.loads(sys.argv[2])
pings = rl["pings"]
ns3_per = ns3["seconds"] / ns3["pings"]
eng_per = rl["engine_seconds"] / pings
fast_per = rl["fast_seconds"] / pings
print(f"{'':34} {'per ping':>12} {'events/s':>14} {'ns-3 / this':>12}")
ev = ns3.get("events")
print(f"{'ns-3 3.44 (Simulator::Run)':34} {ns3_per*1e6:10.2f} us {ev/ns3['seconds'] if ev else float('nan'):14.3e} {1.0:12.1f}")
print(f"{'reachlab engine (ping -c 1000)':34} {eng_per*1e6:10.2f} us {rl['engine_events']/rl['engine_seconds']:14.3e} {ns3_per/eng_per:12.1f}")
print(f"{'reachlab fast path (1000 x ping)':34} {fast_per*1e6:10.2f} us {'':>14} {ns3_per/fast_per:12.1f}")
PY
