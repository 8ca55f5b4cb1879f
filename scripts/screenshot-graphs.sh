#!/bin/sh
# Regenerates the pictures of docs/pictures/: one SVG per built-in Lab topology, each with an
# interesting probe traced on it, and a PNG screenshot of each taken by headless Chromium (so
# the SVG is checked in a real browser).
#
#   scripts/screenshot-graphs.sh [OUT_DIR]     (default: docs/pictures)
#
# Needs a Rust toolchain and, for the PNGs, Debian's chromium (`apt-get install -y chromium`;
# set CHROMIUM to use another binary). Without Chromium only the SVGs are written. The binary is
# built in release mode in $CARGO_TARGET_DIR (default target/); REACHLAB=path/to/reachlab skips
# the build.
set -eu

cd "$(dirname "$0")/.."
out="${1:-docs/pictures}"
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -z "${REACHLAB:-}" ]; then
    cargo build --release --quiet
    REACHLAB="${CARGO_TARGET_DIR:-target}/release/reachlab"
fi
chromium="${CHROMIUM:-/usr/bin/chromium}"

# name | topology | graph arguments
pictures='
lab1-virtualbox|topologies/lab1-virtualbox.yaml|--trace neighbour 10.1.5.87 --probe ssh:1234
lab1-virtualbox-blocked|topologies/lab1-virtualbox.yaml|--trace neighbour 10.0.2.15 --probe ssh
docker-lab1|topologies/docker-lab1.yaml|--trace peer 10.0.2.15 --probe tcp:2223
openstack-lab1|topologies/openstack-lab1.yaml|--trace PC 192.168.37.69 --probe ssh
openstack-calculator|topologies/openstack-calculator.yaml|--trace PC 192.168.37.155 --probe tcp:50010
lab1-calculator-two-networks|topologies/lab1-calculator-two-networks.yaml|--trace front-before 192.168.2.238 --probe tcp:50001
lab2-cluster|topologies/lab2-cluster.yaml|--trace testpod 10.102.146.75 --probe curl
lab2-nodeport|topologies/lab2-nodeport.yaml|--trace PC 192.168.37.62 --probe curl:32347
'

echo "$pictures" | while IFS='|' read -r name file args; do
    [ -n "$name" ] || continue
    # shellcheck disable=SC2086 # the arguments are split on purpose
    rm -f "$out/$name.png"
    "$REACHLAB" graph "$file" $args -o "$out/$name.svg"
    echo "wrote $out/$name.svg"
    if [ -x "$chromium" ]; then
        width=$(sed -n 's/^<svg[^>]* width="\([0-9]*\)".*/\1/p' "$out/$name.svg" | head -n 1)
        height=$(sed -n 's/^<svg[^>]* height="\([0-9]*\)".*/\1/p' "$out/$name.svg" | head -n 1)
        profile=$(mktemp -d)
        "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --hide-scrollbars --user-data-dir="$profile" --screenshot="$out/$name.png" \
            --window-size="$width,$height" "file://$out/$name.svg" >"$profile.log" 2>&1 || true
        if [ ! -s "$out/$name.png" ]; then
            cat "$profile.log" >&2
            echo "chromium did not write $out/$name.png" >&2
            exit 1
        fi
        rm -rf "$profile" "$profile.log"
        echo "wrote $out/$name.png (${width}x${height})"
    fi
done
if [ ! -x "$chromium" ]; then
    echo "no $chromium: SVGs only (apt-get install -y chromium for the screenshots)" >&2
fi
