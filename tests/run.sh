#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need if it is missing
# (redis-server, and libfaketime for the clock-skew test), from Debian/Ubuntu packages.
# Every test starts its own redis-server on a free port; nothing needs to be running.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null || need+=(faketime)
if [ ${#need[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${need[*]}"
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

exec cargo test --workspace --locked "$@"
