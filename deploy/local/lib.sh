# Shared by deploy/local/*.sh: what a script needs to start a private redis-server.
# Source it; nothing here starts anything by itself.

# Installs redis-server from Debian/Ubuntu packages when it is missing.
need_redis_server() {
  command -v redis-server >/dev/null && return 0
  local sudo=; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-server >/dev/null
}

# Prints a loopback port nothing listens on (never 6379: the range starts at 20000).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}

# Waits (up to 10 s) until the redis-server logging to $1 accepts connections.
wait_for_redis() {
  for _ in $(seq 100); do
    grep -q "Ready to accept connections" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "redis-server did not start; its log: $1" >&2
  return 1
}
