#!/usr/bin/env bash
# Nightly ingest then drain, for cron (see examples/crontab). Runs under flock, so a night that
# overruns into the next never has two of these at once: the second waits up to WAIT seconds, then
# gives up with a line in the log. Everything goes to $LOG; exit status is the worst of the steps.
#
#   EPIPE_ROOT=/data/epipe SCANNER=/mnt/scanner TO=s3://lab-scans/raw ENDPOINT=https://s3.lab.example \
#     examples/nightly.sh
#
# TO/ENDPOINT are optional (default: the root's own store). Credentials for s3:// come from
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials (AWS_PROFILE); never put them here.
set -u
: "${EPIPE_ROOT:?set EPIPE_ROOT to the epipe root}"
: "${SCANNER:?set SCANNER to the folder the scanner writes}"
SETTLE=${SETTLE:-600}      # seconds a file must be unmodified before it is taken
WAIT=${WAIT:-3600}         # seconds to wait for a previous run to finish
LOG=${LOG:-$EPIPE_ROOT/nightly.log}
BIN=${EPIPE_BIN:-}         # folder of the epipe binaries (default: PATH)
export EPIPE_ROOT
mkdir -p "$EPIPE_ROOT"
exec 9>"$EPIPE_ROOT/.nightly.lock"
if ! flock -w "$WAIT" 9; then
  echo "$(date -u +%FT%TZ) nightly: a previous run still holds $EPIPE_ROOT/.nightly.lock after ${WAIT}s; skipped" >>"$LOG"
  exit 75
fi
status=0
run() { echo "$(date -u +%FT%TZ) $*" >>"$LOG"; "$@" >/dev/null 2>>"$LOG" || { rc=$?; [ $rc -gt $status ] && status=$rc; }; }
dest=()
[ -n "${TO:-}" ] && dest+=(--to "$TO")
[ -n "${ENDPOINT:-}" ] && dest+=(--endpoint "$ENDPOINT")
run "${BIN:+$BIN/}epipe-ingest" --quiet --settle "$SETTLE" "${dest[@]}" "$SCANNER"
for s in denoise segment cluster stats; do run "${BIN:+$BIN/}epipe-$s" --drain --quiet; done
echo "$(date -u +%FT%TZ) nightly: done, status $status" >>"$LOG"
exit $status
