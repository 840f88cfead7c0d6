#!/usr/bin/env bash
# Cluster scaling: for 1, 2 and 3 primaries (no replicas), a private Redis Cluster on free
# ports, then `workq-bench --only cluster-scale` (ROUNDS rounds of JOBS no-op jobs over
# QUEUES queues, one runtime serving them all), printing one JSON line per round with each
# primary's queues, jobs and Redis CPU per job. BENCHMARKS.md ("Cluster: per-shard cost")
# has a run and the arithmetic to larger clusters.
#
#   deploy/local/cluster-scale.sh            # JOBS=60000 QUEUES=12 ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/lib.sh
JOBS=${JOBS:-60000}
QUEUES=${QUEUES:-12}
ROUNDS=${ROUNDS:-3}
need_redis_server
cargo build --release --quiet -p workq-tests --bin workq-bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/workq-cluster-scale.XXXXXX")
PIDS=()
stop() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop; rm -rf "$WORK"' EXIT
echo "# $(date -u +%FT%RZ) $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(redis-server --version | cut -d' ' -f3)"
for n in 1 2 3; do
  start_local_cluster "$WORK/$n" "$n" 0
  target/release/workq-bench --redis "$CLUSTER_URL" --only cluster-scale --jobs "$JOBS" \
    --queues "$QUEUES" --rounds "$ROUNDS" --json
  stop
done
