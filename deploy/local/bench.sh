#!/usr/bin/env bash
# The benchmark, beside BullMQ, on one private Redis, in one run: the command behind
# BENCHMARKS.md. Needs node and npm for the BullMQ side (set BULLMQ=0 to skip it), and
# builds the bullmq-rs peer on first use (BULLMQ_RS=0 skips it).
#
#   deploy/local/bench.sh                 # all scenarios, workq then BullMQ, plus ratios
#   deploy/local/bench.sh --only latency  # extra arguments go to workq-bench
#   deploy/local/bench.sh --rounds 1      # one throughput pair instead of five
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/lib.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/workq-bench.XXXXXX")
REDIS_PID=
cleanup() {
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

need_redis_server
port=$(free_port)
# Like the peer's README: a plain local Redis, nothing on disk.
redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
  --logfile "$WORK/redis.log" &
REDIS_PID=$!
wait_for_redis "$WORK/redis.log"

# Five throughput rounds, each workq run next to BullMQ's: the ratios are the medians of
# the rounds', which a noisy machine moves less than a single pair.
args=(--redis "redis://127.0.0.1:$port" --json --rounds 5)
if [ "${BULLMQ:-1}" != 0 ]; then
  peer=target/peers/bullmq
  if [ ! -d "$peer/node_modules/bullmq" ]; then
    [ -d ../shared/peers/bullmq ] || { echo "bench.sh: ../shared/peers/bullmq not found (BULLMQ=0 skips it)"; exit 1; }
    mkdir -p target/peers && rm -rf "$peer" && cp -r ../shared/peers/bullmq "$peer"
    (cd "$peer" && npm install --no-audit --no-fund --silent)
  fi
  args+=(--bullmq "$peer")
fi

# The official Rust port of BullMQ, built on first use in target/peers/bullmq-rs (its own
# Cargo.lock and target dir; the workspace excludes target/peers). BULLMQ_RS=0 skips it.
if [ "${BULLMQ_RS:-1}" != 0 ]; then
  rpeer=target/peers/bullmq-rs
  if [ ! -x "$rpeer/target/release/bench" ] || [ ! -x "$rpeer/target/release/latency" ]; then
    [ -d ../shared/peers/bullmq-rs ] || { echo "bench.sh: ../shared/peers/bullmq-rs not found (BULLMQ_RS=0 skips it)"; exit 1; }
    mkdir -p target/peers && rm -rf "$rpeer" && cp -r ../shared/peers/bullmq-rs "$rpeer"
    (cd "$rpeer" && cargo build --release --quiet)
  fi
  args+=(--bullmq-rs "$rpeer")
fi

cargo build --release --quiet -p workq-tests --bin workq-bench
# A fresh build leaves hundreds of MB to write back; on a 2-core VM that writeback would
# land on the first scenario (workq's throughput) and not on BullMQ's, which runs last.
sync
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(redis-server --version | cut -d' ' -f3), node $(node --version 2>/dev/null || echo -)," \
  "bullmq $(node -p "require('./target/peers/bullmq/node_modules/bullmq/package.json').version" 2>/dev/null || echo -)"
target/release/workq-bench "${args[@]}" "$@"
