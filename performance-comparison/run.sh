#!/usr/bin/env bash
# Builds and runs every peer benchmark and ndring's cross-process bench, then prints one combined
# markdown table. Usage: ./performance-comparison/run.sh   (from anywhere)
# Knobs: PC_RUNS (peer runs, default 5), NDRING_BENCH_RUNS (ndring runs, default 3).
set -euo pipefail
PC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$PC_DIR/.." && pwd)"
OUT="$PC_DIR/target/results"
mkdir -p "$OUT"
export PC_RUNS="${PC_RUNS:-5}"

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
echo "== build (release)" >&2
HAVE_ICEORYX2=1
if ! cargo build --release --manifest-path "$PC_DIR/Cargo.toml" --bins 2>"$OUT/build.log"; then
    echo "full build failed (see $OUT/build.log); building crossbeam only" >&2
    HAVE_ICEORYX2=0
    cargo build --release --manifest-path "$PC_DIR/Cargo.toml" --bin crossbeam
fi
BIN="$PC_DIR/target/release"

echo "== crossbeam / ndring in-process" >&2
"$BIN/crossbeam" | tee "$OUT/crossbeam.txt"

: >"$OUT/iceoryx2.txt"
if [ "$HAVE_ICEORYX2" = 1 ]; then
    echo "== ndring vs iceoryx2, round by round (W1, W3)" >&2
    "$BIN/iceoryx2" | tee "$OUT/iceoryx2.txt" || { echo "iceoryx2 run failed" >&2; : >"$OUT/iceoryx2.txt"; }
fi

echo "== python baseline" >&2
python3 -c 'import numpy' 2>/dev/null || pip install numpy
python3 "$PC_DIR/python_baseline.py" | tee "$OUT/python.txt"

echo "== ndring cargo bench --bench ipc (w2: 64 B items between 2 processes)" >&2
(cd "$ROOT" && NDRING_BENCH_ONLY=w2 NDRING_BENCH_RUNS="${NDRING_BENCH_RUNS:-3}" \
    cargo bench --bench ipc) | tee "$OUT/ndring-ipc.txt"
cp "$ROOT/target/ipc-report.md" "$OUT/ipc-report.md"

# ---------------------------------------------------------------------------------------------
# Parse. `res FILE KEY` -> value of "RESULT KEY value"; `rep ROWNAME` -> median column of that
# row of ipc-report.md, converted to plain units (ns, items/s, frames/s).
res() { awk -v k="$2" '$1 == "RESULT" && $2 == k { print $3 }' "$1"; }
rep() {
    awk -F'|' -v r="$1" '{ n = $2; gsub(/^ +| +$/, "", n) }
        n == r { v = $4; gsub(/^ +| +$/, "", v); split(v, a, " ");
                 m = 1; if (a[2] == "M") m = 1e6; else if (a[2] == "k") m = 1e3;
                 else if (a[2] == "µs") m = 1e3; else if (a[2] == "ms") m = 1e6;
                 printf "%.6g\n", a[1] * m; exit }' "$OUT/ipc-report.md"
}
fmt_rate() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else if (x >= 1e6) printf "%.2f M/s", x/1e6;
    else if (x >= 1e4) printf "%.1f k/s", x/1e3; else printf "%.1f/s", x }'; }
fmt_ns() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else if (x >= 1e4) printf "%.1f µs", x/1e3;
    else printf "%d ns", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "–"; else printf "%.2f×", a/b }'; }

CB="$OUT/crossbeam.txt"; IX="$OUT/iceoryx2.txt"; PY="$OUT/python.txt"
nd_w2=$(rep "ndring spsc (64 slots)")
cb_w1=$(res "$CB" crossbeam_w1_p50_ns)
cb_w2=$(res "$CB" crossbeam_w2_items_per_s)
ndi_w2=$(res "$CB" ndring_inproc_w2_items_per_s)
py_w3=$(res "$PY" python_w3_frames_per_s)
py_sm=$(res "$PY" python_small_items_per_s)
nd_w1=$(res "$IX" ndring_w1_p50_ns); ix_w1=$(res "$IX" iceoryx2_w1_p50_ns); r_w1=$(res "$IX" ratio_w1_p50_ns)
w3_row() { # res slots
    local k="w3_$1_$2_frames_per_s"
    echo "| W3 $1 frames/s, $2 slots / subscriber buffer $2 | $(fmt_rate "$(res "$IX" ndring_$k)") | iceoryx2 pub-sub | $(fmt_rate "$(res "$IX" iceoryx2_$k)") | $(res "$IX" ratio_$k)× |"
}
rtts=$(awk '$1 == "RESULT" && $2 ~ /^round[0-9]+_line_rtt_ns$/ { printf "%s%s", sep, $3; sep = ", " }' "$IX")

{
echo
echo "| workload | ndring | peer | peer figure | ndring / peer |"
echo "|---|---|---|---|---|"
echo "| W1 64 B round trip, busy-poll, p50 (latency: below 1× ndring is faster) | $(fmt_ns "$nd_w1") (2 processes) | iceoryx2 pub-sub (2 processes) | $(fmt_ns "$ix_w1") | ${r_w1}× |"
echo "| W1 64 B round trip, busy-poll, p50, reference | $(fmt_ns "$nd_w1") (2 processes) | crossbeam ArrayQueue ×2 (2 threads) | $(fmt_ns "$cb_w1") | $(ratio "$nd_w1" "$cb_w1") |"
echo "| W2 64 B one way, 64 slots, 2 threads of one process | $(fmt_rate "$ndi_w2") | crossbeam ArrayQueue (2 threads) | $(fmt_rate "$cb_w2") | $(ratio "$ndi_w2" "$cb_w2") |"
w3_row 1080p 2; w3_row 1080p 4; w3_row 1080p 8; w3_row 1080p 16; w3_row 4K 4
echo "| W3 1080p frames/s, 8 slots | $(fmt_rate "$(res "$IX" ndring_w3_1080p_8_frames_per_s)") | Python shared_memory + Queue, 8 slots | $(fmt_rate "$py_w3") | $(ratio "$(res "$IX" ndring_w3_1080p_8_frames_per_s)" "$py_w3") |"
echo "| 64 B arrays items/s, 2 processes | $(fmt_rate "$nd_w2") (64 slots) | Python shared_memory + Queue, 8 slots | $(fmt_rate "$py_sm") | $(ratio "$nd_w2" "$py_sm") |"
echo
echo "Rates: above 1× ndring is faster. ndring vs iceoryx2: PC_RUNS=$PC_RUNS rounds, interleaved, medians of the figures and of the per-round ratios; cache-line round trip per round: $rtts ns. Other peers: PC_RUNS=$PC_RUNS runs, medians; ndring W2 from cargo bench --bench ipc (NDRING_BENCH_RUNS=${NDRING_BENCH_RUNS:-3}). $(date -u +%F), $(nproc) core(s); load average before: $LOAD_BEFORE, after: $(cut -d" " -f1-3 /proc/loadavg)."
} | tee "$OUT/combined.md"
