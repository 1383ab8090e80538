#!/usr/bin/env bash
# The refactoring guard (issue 9): sha256 of what the stages write on two fixed inputs, the demo
# slide (2048 x 2048 x 6, seed 7) and the bench slide (8192 x 8192 x 4, seed 11), default flags.
# Run before and after a change that must not change outputs, and compare the two listings.
#   bash bench/guard.sh [OUT_DIR]      (GUARD_BIG=0 skips the 8192 slide)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${EPIPE_BIN:-$here/.build/release}
work=${1:-/tmp/epipe-guard}
big=${GUARD_BIG:-1}
mkdir -p "$work"
run() {   # name size channels seed
  local d=$work/$1
  rm -rf "$d"
  "$bin/epipe-synth" --out "$d/scans" --truth "$d/truth" --width "$2" --height "$2" --channels "$3" --seed "$4" --name "$1" --quiet >/dev/null
  local job
  job=$("$bin/epipe-ingest" --root "$d/root" --settle 0 --quiet "$d/scans")
  "$bin/epipe-denoise" --quiet "$job" >/dev/null
  "$bin/epipe-segment" --quiet "$job" >/dev/null
  for f in denoise/image.ome.tif segment/nuclei.tif segment/cells.tif segment/cells.csv; do
    printf '%s  %s/%s\n' "$(sha256sum "$job/$f" | cut -d' ' -f1)" "$1" "$f"
  done
}
run sample 2048 6 7
[[ $big != 0 ]] && run bench 8192 4 11
exit 0
