#!/usr/bin/env bash
# make bench-scale: one generated whole slide (default 32768 x 32768 x 8 channels, 16 GiB of pixels)
# through denoise, segment (with quantification), cluster and stats on this machine: wall time, MPix/s,
# cells and peak RSS per stage, which must stay under BENCH_SCALE_RSS_MIB (4096) for every stage. Then,
# where epipe-denoise/epipe-segment know --tiles, the same slide as BENCH_SCALE_TILES (4) sequential
# workers plus the merge (BENCH_SCALE_TILES=0 skips them), whose outputs must be byte-identical to the
# single worker's. Not a test. Needs about 2.5 x the slide's bytes free under BENCH_DIR (3.2 x with the
# tile split: the single run's denoise/ and segment/ go once their digests are taken, then the parts'
# strips and the merge's image sit side by side until the merge removes the strips).
#   BENCH_SCALE_SIZE=8192 BENCH_SCALE_CHANNELS=8 bash bench/scale.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/.build/release
size=${BENCH_SCALE_SIZE:-32768}; chans=${BENCH_SCALE_CHANNELS:-8}; limit=${BENCH_SCALE_RSS_MIB:-4096}
tiles=${BENCH_SCALE_TILES:-4}
work=${BENCH_DIR:-/tmp/epipe-bench}/scale-${size}x${size}x${chans}
mkdir -p "$work"
need=$(( size * size * chans * 2 * (tiles >= 2 ? 32 : 25) / 10 / 1048576 ))
free=$(( $(df -Pk "$work" | awk 'NR==2 {print $4}') / 1024 ))
if (( free < need )); then
  echo "bench-scale: $need MiB needed under $work, $free MiB free; set BENCH_DIR or a smaller BENCH_SCALE_SIZE" >&2; exit 2
fi
mpix=$(python3 -c "print($size * $size / 1e6)")
results=$work/results.txt; : > "$results"
row() { printf '%-26s %9s %10s %9s %12s  %s\n' "$@" | tee -a "$results"; }
# run NAME MPIX CMD... -> a row: seconds, MPix/s, peak RSS MiB, within the limit
run() {
  local name=$1 px=$2; shift 2
  local t0 t1 kib s out rc=0
  t0=$(date +%s.%N)
  out=$( { /usr/bin/time -f %M "$@" >/dev/null; } 2>&1 ) || rc=$?
  t1=$(date +%s.%N)
  kib=$(tail -1 <<< "$out"); [[ $kib =~ ^[0-9]+$ ]] || kib=0
  s=$(python3 -c "print(round($t1 - $t0, 1))")
  local mib=$((kib / 1024)) ok=yes; (( mib < limit )) || ok="NO (limit $limit MiB)"
  if (( rc != 0 )); then ok="FAILED (exit $rc)"; NOTE="$(grep -v '^[0-9]*$' <<< "$out" | tail -1)"; fi
  row "$name" "$s" "$(python3 -c "print(round($px / max($s, 1e-9), 1) if $px > 0 else '-')")" "$mib" "$ok" "${NOTE:-}"
  NOTE=""
}
cells() { echo $(( $(wc -l < "$1/segment/cells.csv") - 1 )); }

echo "bench-scale: ${size} x ${size} x ${chans} uint16 ($(python3 -c "print(round($size*$size*$chans*2/2**30, 1))") GiB of pixels), $(nproc) cores, limit $limit MiB per stage"
row stage seconds MPix/s peak_MiB "under limit" note
if [[ ! -f $work/store-ready ]]; then
  rm -rf "$work/scans" "$work/truth" "$work/root"
  NOTE="generated slide (not epipe's pipeline)"
  run "synth" "$mpix" "$bin/epipe-synth" --out "$work/scans" --truth "$work/truth" --width "$size" --height "$size" --channels "$chans" --seed 11 --name slide --quiet
  rm -rf "$work/truth"   # not scored here; its label images would double the disk needed
  # the store's copy is what the pipeline reads; the generated source goes once verified
  NOTE="file:// store, sha256 verified, source deleted after"
  run "ingest" 0 "$bin/epipe-ingest" --root "$work/root" --settle 0 --quiet --delete-source-after-verify "$work/scans"
  touch "$work/store-ready"
fi
job=$(ls -d "$work"/root/jobs/*/ | head -1); job=${job%/}
NOTE="$chans channels: $(python3 -c "print(round($size*$size*$chans/1e6))") MPix in all"
run "denoise" "$mpix" "$bin/epipe-denoise" --quiet --force "$job"
run "segment + quantify" "$mpix" "$bin/epipe-segment" --quiet --force "$job"
single_cells=$(cells "$job")
digests() { sha256sum "$job/denoise/image.ome.tif" "$job/segment/cells.tif" "$job/segment/cells.csv" | cut -d' ' -f1 | tr '\n' ' '; }
single_sha=$(digests)
NOTE="cells=$single_cells"; run "cluster" 0 "$bin/epipe-cluster" --quiet --force "$job"
NOTE="cells=$single_cells"; run "stats" 0 "$bin/epipe-stats" --quiet --force "$job"
echo "bench-scale: single worker: $single_cells cells"

dhelp=$("$bin/epipe-denoise" --help 2>/dev/null || true); shelp=$("$bin/epipe-segment" --help 2>/dev/null || true)
if (( tiles < 2 )); then
  echo "bench-scale: BENCH_SCALE_TILES=$tiles: no tile-split rows"
elif [[ $dhelp == *--tiles* && $shelp == *--tiles* ]]; then
  rm -rf "$job/denoise" "$job/segment"   # digests taken above; the split starts from the ingested job
  t0=$(date +%s.%N)
  for st in denoise segment; do
    for i in $(seq 0 $((tiles - 1))); do
      NOTE="part $i of $tiles"; run "$st --tiles $tiles --tile $i" "$(python3 -c "print($mpix / $tiles)")" "$bin/epipe-$st" --quiet --tiles "$tiles" --tile "$i" "$job"
    done
    NOTE="merge"; run "$st --merge" "$mpix" "$bin/epipe-$st" --quiet --merge "$job"
  done
  t1=$(date +%s.%N)
  same=no; [[ $(digests) == "$single_sha" ]] && same=yes
  row "$tiles workers + merges" "$(python3 -c "print(round($t1 - $t0, 1))")" - - - "cells=$(cells "$job") (single worker $single_cells); image.ome.tif, cells.tif, cells.csv byte-identical to the single run: $same"
else
  echo "bench-scale: this build has no --tiles; the tile-split rows are skipped"
fi
echo "bench-scale: rows in $results"
