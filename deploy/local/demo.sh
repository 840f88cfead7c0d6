#!/usr/bin/env bash
# workq on one machine: a private Redis, three worker processes and a producer that
# enqueues the seed scenario and exits. One worker is SIGKILLed while it counts; another
# finishes the job after the lease. Exits non-zero if any job was lost.
#
#   deploy/local/demo.sh              # starts its own redis-server on a free port
#   deploy/local/demo.sh --cluster    # the same on a six-node local Redis Cluster
#   REDIS_URL=redis://host:port deploy/local/demo.sh
set -euo pipefail
CLUSTER=0
case "${1:-}" in
  --cluster) CLUSTER=1 ;;
  "") ;;
  *) echo "usage: deploy/local/demo.sh [--cluster]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/../.."
. deploy/local/lib.sh
COUNT_TO=${COUNT_TO:-20}
STEP_MS=${STEP_MS:-250}
SMALL=${SMALL:-10000}
LEASE_MS=${LEASE_MS:-5000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/workq-demo.XXXXXX")
PIDS=()

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1. Redis
if [ "$CLUSTER" = 1 ]; then
  command -v redis-server >/dev/null || say "installing redis-server"
  need_redis_server
  start_local_cluster "$WORK"
  REDIS_URL=$CLUSTER_URL
  say "private Redis Cluster at $REDIS_URL (3 primaries, 3 replicas; AOF everysec, noeviction)"
elif [ -z "${REDIS_URL:-}" ]; then
  command -v redis-server >/dev/null || say "installing redis-server"
  need_redis_server
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK" --save "" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
    --logfile "$WORK/redis.log" &
  PIDS+=($!)
  REDIS_URL="redis://127.0.0.1:$port"
  wait_for_redis "$WORK/redis.log"
  say "private Redis at $REDIS_URL (AOF everysec, noeviction)"
fi
export REDIS_URL

# 2. Binaries
say "building release binaries"
cargo build --release --quiet -p workq-worker -p workq-producer --bins \
  --features workq-producer/cli,workq-worker/cli
BIN=target/release

# 3. Three workers. Each one's output goes to its log and, filtered, to this console.
for n in 1 2 3; do
  WORKQ_LOG=info "$BIN/workq-worker" --redis "$REDIS_URL" --lease-ms "$LEASE_MS" \
    --grace-ms 5000 --id "worker-$n" \
    > >(tee "$WORK/worker-$n.log" | grep --line-buffered -E "count [0-9]+/|lease|handed|Redis" \
        | sed -u "s/^/  [worker-$n] /") 2>&1 &
  PIDS+=($!)
  eval "WORKER_$n=$!"
done
say "3 workers running (lease ${LEASE_MS} ms); their 'count' lines follow"

# 4. Watch state changes of the counting job, and totals for the rest
COUNT_ID=$("$BIN/workq" new-id)
"$BIN/workq" --redis "$REDIS_URL" watch --follow "$COUNT_ID" \
  > >(tee "$WORK/watch.log" | sed -u 's/^/  /') 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q "watching" "$WORK/watch.log" 2>/dev/null && break; sleep 0.1; done

# 5. The producer enqueues and exits
say "producer: a counting job (1..$COUNT_TO, initial delay 3 s, tag worker_test) and $SMALL small jobs"
"$BIN/workq" --redis "$REDIS_URL" demo-enqueue --ids-file "$WORK/ids" --count-id "$COUNT_ID" \
  --count-to "$COUNT_TO" --step-ms "$STEP_MS" --delay-ms 3000 --small "$SMALL" | sed 's/^/  [producer] /'

# 6. Kill the worker that is counting, midway
half=$((COUNT_TO / 2))
victim=
for _ in $(seq 600); do
  for n in 1 2 3; do
    if grep -q "count $half/$COUNT_TO id=$COUNT_ID" "$WORK/worker-$n.log" 2>/dev/null; then
      victim=$n
    fi
  done
  [ -n "$victim" ] && break
  sleep 0.1
done
[ -n "$victim" ] || { say "the counting job never reached $half"; exit 1; }
pid_var="WORKER_$victim"
say "SIGKILL worker-$victim (pid ${!pid_var}) at count $half/$COUNT_TO; another worker takes over after its lease"
{ kill -9 "${!pid_var}" && wait "${!pid_var}"; } 2>/dev/null || true

# 7. Summary
status=0
"$BIN/workq" --redis "$REDIS_URL" verify --ids-file "$WORK/ids" --attempts-of-first 2 \
  --wait-secs 90 | sed 's/^/  [summary] /' || status=$?
"$BIN/workq" --redis "$REDIS_URL" stats default | sed 's/^/  [stats] /'
if [ "${PIPESTATUS[0]}" -ne 0 ] || [ "$status" -ne 0 ]; then status=1; fi
[ "$status" -eq 0 ] && say "done: every job SUCCEEDED, the counting job on attempt 2" || say "FAILED"
exit "$status"
