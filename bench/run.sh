#!/usr/bin/env bash
# make bench: epipe against the Python stack (scikit-image, scikit-learn, leidenalg, squidpy)
# on the same generated input, in one run. Prints times, ratios and peak RSS. Not a test.
#   BENCH_SIZE=8192 BENCH_CHANNELS=4 bash bench/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/.build/release
size=${BENCH_SIZE:-8192}
chans=${BENCH_CHANNELS:-4}
work=${BENCH_DIR:-/tmp/epipe-bench-$size}
shared=${EPIPE_SHARED:-$here/../shared}
mkdir -p "$work"

peer_py=""
if [[ -x $shared/bench/setup-peers.sh ]]; then
  venv=$("$shared/bench/setup-peers.sh" "${PEERS_VENV:-/tmp/epipe-peers}" 2>/dev/null || true)
  [[ -n $venv && -x $venv/bin/python ]] && peer_py=$venv/bin/python
fi
[[ -z $peer_py ]] && echo "bench: Python peers not available (no $shared/bench); timing epipe only" >&2

img=$work/scans/bench.ome.tif
if [[ ! -f $img ]]; then
  echo "bench: generating ${size}x${size}x${chans} slide" >&2
  $bin/epipe-synth --out "$work/scans" --truth "$work/truth" --width "$size" --height "$size" --channels "$chans" --seed 11 --name bench --quiet >/dev/null
fi
root=$work/root
rm -rf "$root"
job=$($bin/epipe-ingest --root "$root" --settle 0 --quiet "$work/scans")

rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }   # peak RSS in KiB
row() { printf '%-10s %10s %10s %9s %12s %12s %s\n' "$@"; }
row step epipe_s peer_s ratio epipe_MiB peer_MiB note

stage() {  # stage, peer step, extra peer args
  local s=$1 ps=$2; shift 2
  local kib t0 t1 es
  t0=$(date +%s.%N)
  kib=$( { /usr/bin/time -f %M $bin/epipe-$s --quiet --force "$job" >/dev/null; } 2>&1 | tail -1 )
  t1=$(date +%s.%N)
  es=$(python3 -c "print(round($t1-$t0,2))")
  local pin=$1; shift
  if [[ -n $peer_py && -n $ps ]]; then
    local out; out=$($peer_py "$shared/bench/peer_baseline.py" "$ps" "$pin" "$@")
    local psec pmib; psec=$(python3 -c "import json,sys;print(json.loads(sys.argv[1])['seconds'])" "$out")
    pmib=$(python3 -c "import json,sys;print(json.loads(sys.argv[1])['peak_rss_mib'])" "$out")
    row "$s" "$es" "$psec" "$(python3 -c "print(round($psec/$es,1))")x" "$((kib/1024))" "$pmib" "$(python3 -c "import json,sys;d=json.loads(sys.argv[1]);print({k:v for k,v in d.items() if k not in ('step','seconds','peak_rss_mib')})" "$out")"
  else
    row "$s" "$es" "-" "-" "$((kib/1024))" "-" ""
  fi
}
stage denoise denoise "$img"
stage segment segment "$job/denoise/image.ome.tif"
markers=$(head -1 "$job/segment/cells.csv" | tr ',' '\n' | sed -n '3,'"$((chans+1))"'p' | paste -sd,)
stage cluster cluster "$job/segment/cells.csv" --markers "$markers" --k 8
stage stats "" ""
echo "bench: epipe cells $(($(wc -l < "$job/segment/cells.csv")-1)); epipe times are wall clock of the whole binary (read, compute, write, QC);" \
     "peer times exclude reading the input. Recipes differ until the denoise/segment issues align them (peer denoise adds a top-hat)." >&2
