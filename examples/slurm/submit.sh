#!/usr/bin/env bash
# Submits the epipe chain to Slurm: per stage, an array of N drain workers
# (`epipe-<stage> --root ROOT --drain`, examples/slurm/drain.sbatch), each stage's array waiting
# for the previous stage's, then one small job that reports (epipe-status) when all are through.
#
#   epipe-ingest --root /shared/epipe /mnt/scanner       # or on a node: --after <ingest job id>
#   examples/slurm/submit.sh /shared/epipe 8
#
# ROOT must be on storage that every node mounts (NFS, Lustre, EFS); with an s3:// store only the
# root (job.json, manifests, queues) need be shared, each node fetches raw scans from the bucket
# with its own credentials (see README, "Running on a cluster"). Workers run with the submitter's
# environment (--export=ALL), so the binaries must be on PATH here or named by --bin.
#
# Prints one line per submitted array, "<stage> <job id>", then "report <job id>". Watch with
# `squeue -u $USER` and `epipe-status --root ROOT`; worker logs go to ROOT/slurm/ (--logs).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: submit.sh [options] ROOT [N]
  ROOT                the epipe root, shared by every node; its jobs ingested and queued
  N                   drain workers per stage: the size of each array (default 4)
options:
  --stages LIST       stages in order (default denoise,segment,cluster,stats)
  --cpus STAGE=N      a stage's --cpus-per-task (repeatable; STAGE may be "all")
  --mem STAGE=SIZE    a stage's --mem, e.g. segment=8G (repeatable; STAGE may be "all")
  --after JOBID       the first stage waits for this job (e.g. an ingest job) to end
  --strict            afterok between stages (default afterany; see below)
  --bin DIR           folder of the epipe binaries, put first on the workers' PATH
  --logs DIR          where Slurm writes worker logs (default ROOT/slurm)
  --partition P, --account A, --time T, --qos Q   passed to every sbatch
  --split JOB         one huge slide across the array instead: denoise and segment each as N parts
                      (epipe-<stage> --tiles N --tile $SLURM_ARRAY_TASK_ID JOB) then one merge
                      (--merge), then cluster and stats on that job; afterok throughout
  --dry-run           print the sbatch commands instead of running them
  -- ARGS...          more sbatch options for every submission
EOF
}

# Per-stage requests. From `make bench` on a 2048 x 2048 x 6-channel slide: denoise peaks at
# ~250 MiB and segment at ~360 MiB, and both work in tiles or row bands, so their peak stays
# bounded by the tile size, not the slide size; cluster and stats hold one cell table (a million
# cells: stats ~300 MiB, see README). The figures are generous fixed values with headroom for
# 60-marker slides; every stage uses all the cores it is given.
declare -A CPUS=([denoise]=2 [segment]=2 [cluster]=2 [stats]=2)
declare -A MEM=([denoise]=2G [segment]=4G [cluster]=2G [stats]=2G)

stages=(denoise segment cluster stats)
after="" strict=0 bin="" logs="" dry=0 split=""
common=()
pos=()
while [ $# -gt 0 ]; do
  case $1 in
    --stages) IFS=, read -r -a stages <<<"$2"; shift 2 ;;
    --cpus|--mem)
      kv=$2; s=${kv%%=*}; v=${kv#*=}
      [[ $kv == *=* && -n $v ]] || { echo "submit.sh: $1 takes STAGE=VALUE, not '$kv'" >&2; exit 2; }
      if [ "$s" = all ]; then targets=(denoise segment cluster stats); else targets=("$s"); fi
      for t in "${targets[@]}"; do if [ "$1" = --cpus ]; then CPUS[$t]=$v; else MEM[$t]=$v; fi; done
      shift 2 ;;
    --after) after=$2; shift 2 ;;
    --strict) strict=1; shift ;;
    --bin) bin=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    --partition|--account|--time|--qos) common+=("$1=$2"); shift 2 ;;
    --split) split=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; common+=("$@"); break ;;
    -*) echo "submit.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) pos+=("$1"); shift ;;
  esac
done
[ ${#pos[@]} -ge 1 ] && [ ${#pos[@]} -le 2 ] || { usage >&2; exit 2; }
root=${pos[0]}
n=${pos[1]:-4}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: N must be a positive number of workers, not '$n'" >&2; exit 2; }
[ -d "$root/jobs" ] || { echo "submit.sh: $root is not an epipe root (no jobs/ in it); ingest first" >&2; exit 2; }
root=$(cd "$root" && pwd)
for s in "${stages[@]}"; do
  [ -n "${CPUS[$s]:-}" ] || { echo "submit.sh: unknown stage '$s' (denoise, segment, cluster, stats)" >&2; exit 2; }
done
logs=${logs:-$root/slurm}
[ $dry = 1 ] || mkdir -p "$logs"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -n "$bin" ]; then export PATH="$(cd "$bin" && pwd):$PATH"; fi
command -v sbatch >/dev/null || [ $dry = 1 ] || { echo "submit.sh: sbatch not found; is this a Slurm login node?" >&2; exit 2; }
export EPIPE_ROOT=$root

# Between stages: afterany by default. A drain worker exits non-zero when one of its jobs failed (1;
# 2 when a job's input was refused): that job is in queue/<stage>/failed with its error, the others
# went on to the next queue and the worker went on draining, so with afterok one bad
# slide would hold back every other slide's next stage. The next stage drains whatever reached its
# queue; the report job at the end fails if any job failed. --strict uses afterok: any failed
# worker stops the rest of the chain (and Slurm cancels the stages that can no longer run).
dep=afterany
[ $strict = 1 ] && dep=afterok && common+=(--kill-on-invalid-dep=yes)

submit() {   # LABEL SBATCH-ARGS...: prints the job id
  local label=$1; shift
  if [ $dry = 1 ]; then { printf 'sbatch'; printf ' %q' "$@"; printf '\n'; } >&2; echo "<$label>"; return; fi
  sbatch --parsable "$@" | cut -d';' -f1
}

prev=$after
submitted=()
failed() { echo "submit.sh: sbatch for $1 failed (its error is above)${submitted[*]:+; already submitted: ${submitted[*]} (scancel them, or let them run)}" >&2; exit 1; }
if [ -z "$split" ]; then
  for s in "${stages[@]}"; do
    args=(--job-name="epipe-$s" --array="0-$((n - 1))" --cpus-per-task="${CPUS[$s]}" --mem="${MEM[$s]}"
          --output="$logs/%x-%A_%a.log" --export=ALL "${common[@]}")
    [ -n "$prev" ] && args+=(--dependency="$dep:$prev")
    id=$(submit "$s" "${args[@]}" "$here/drain.sbatch" "$s") && [ -n "$id" ] || failed "$s"
    echo "$s $id"
    submitted+=("$id")
    prev=$id
  done
else
  # ---- One huge slide across the array: N parts a stage, then the merge -----------------------
  # Each part reads only its rows (plus their halo) and writes <stage>/parts/<I>/ under the job; the
  # merge assembles the stage's outputs, byte for byte what one worker would have written, and
  # refuses while a part is missing. Params (e.g. denoise.band, segment.tile) come from job.json so
  # every part and the merge agree. A failed part is rerun alone: epipe-<stage> --tiles N --tile I JOB.
  [ -f "$split/job.json" ] || { echo "submit.sh: --split $split: no job.json there; give a job directory of ROOT/jobs" >&2; exit 2; }
  job=$(cd "$split" && pwd); qjob=$(printf %q "$job")
  for s in "${stages[@]}"; do
    res=(--cpus-per-task="${CPUS[$s]}" --mem="${MEM[$s]}" --export=ALL "${common[@]}")
    if [ "$s" = denoise ] || [ "$s" = segment ]; then
      args=(--job-name="epipe-$s-part" --array="0-$((n - 1))" --output="$logs/%x-%A_%a.log" "${res[@]}")
      [ -n "$prev" ] && args+=(--dependency="afterok:$prev")
      id=$(submit "$s-parts" "${args[@]}" --wrap "epipe-$s --quiet --tiles $n --tile \$SLURM_ARRAY_TASK_ID $qjob > /dev/null") && [ -n "$id" ] || failed "$s parts"
      echo "$s-parts $id"; submitted+=("$id"); prev=$id
      args=(--job-name="epipe-$s-merge" --output="$logs/%x-%j.log" --dependency="afterok:$prev" "${res[@]}")
      id=$(submit "$s-merge" "${args[@]}" --wrap "epipe-$s --quiet --merge $qjob > /dev/null") && [ -n "$id" ] || failed "$s merge"
      echo "$s-merge $id"; submitted+=("$id"); prev=$id
    else
      args=(--job-name="epipe-$s" --output="$logs/%x-%j.log" "${res[@]}")
      [ -n "$prev" ] && args+=(--dependency="afterok:$prev")
      id=$(submit "$s" "${args[@]}" --wrap "epipe-$s --quiet $qjob > /dev/null") && [ -n "$id" ] || failed "$s"
      echo "$s $id"; submitted+=("$id"); prev=$id
    fi
  done
fi

# One line of state for the whole submission: fails if a job failed or a claim went stale.
rargs=(--job-name=epipe-report --cpus-per-task=1 --mem=1G --output="$logs/%x-%j.log" --export=ALL "${common[@]}")
[ -n "$prev" ] && rargs+=(--dependency="afterany:$prev")
id=$(submit report "${rargs[@]}" --wrap "epipe-status --root $(printf %q "$root") --fail-on failed,stale") && [ -n "$id" ] || failed report
echo "report $id"
