#!/usr/bin/env bash
# The network path before and after a change, in one run: two builds of benches/bridge.rs (the
# baseline's binary and this tree's), alternated round by round, each round measuring the
# bridge's 1080p frames/s and a plain TCP socket's between the same two processes. Prints each
# round's bridge/TCP ratio per build (compare ratios, never absolute rates: the host's state
# changes between rounds).
#
#   benches/before_after.sh BASELINE_BENCH_BINARY [ROUNDS]
#
# Build the baseline's binary from another checkout: `cargo bench --no-run` there prints its
# path. This tree's is built here.
set -euo pipefail
base=$1
rounds=${2:-6}
cd "$(dirname "$0")/.."
new=$(cargo bench --bench bridge --no-run 2>&1 | grep -o 'target/release/deps/bridge-[0-9a-f]*' | head -1)
export NDZ_BENCH_ROUNDS=1 NDZ_BENCH_SECONDS=${NDZ_BENCH_SECONDS:-3} NDZ_BENCH_ONLY=bridge-frames,tcp-frames
echo "round | build | bridge frames/s | TCP frames/s | bridge/TCP"
for round in $(seq 1 "$rounds"); do
    # Alternate which build goes first, so neither always meets the host in the same state.
    if (( round % 2 )); then order="before after"; else order="after before"; fi
    for build in $order; do
        bin=$new
        [[ $build == before ]] && bin=$base
        row=$("$bin" --bench 2>/dev/null | awk -F'|' '$1 ~ /^ *[0-9]+ *$/ {print $3, $5}')
        read -r bridge tcp <<<"$row"
        awk -v r="$round" -v b="$build" -v x="$bridge" -v t="$tcp" \
            'BEGIN { printf "%5d | %-6s | %15.0f | %12.0f | %.2fx\n", r, b, x, t, x / t }'
    done
done
