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

# Prints a loopback port that is free together with its cluster bus port (port + 10000).
free_cluster_port() {
  local p
  for _ in $(seq 50); do
    p=$(free_port) || return 1
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port pair found" >&2
  return 1
}

# Starts a Redis Cluster in directory $1 of $2 primaries (default 3) with $3 replicas each
# (default 1; AOF everysec, noeviction), appending each node's pid to the PIDS array; sets
# CLUSTER_URL (redis+cluster:// with every node as a seed) once every node says
# cluster_state:ok. The slots are split evenly and assigned by hand (CLUSTER ADDSLOTSRANGE,
# MEET, REPLICATE), as `redis-cli --cluster create` needs three primaries.
start_local_cluster() {
  local dir=$1 primaries=${2:-3} replicas=${3:-1} ports=() p seeds=() total
  total=$((primaries * (1 + replicas)))
  while [ ${#ports[@]} -lt "$total" ]; do
    p=$(free_cluster_port) || return 1
    case " ${ports[*]} " in *" $p "*) continue ;; esac
    ports+=("$p")
  done
  for p in "${ports[@]}"; do
    mkdir -p "$dir/node-$p"
    redis-server --port "$p" --bind 127.0.0.1 --dir "$dir/node-$p" --save "" \
      --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
      --cluster-enabled yes --cluster-config-file "$dir/node-$p/nodes.conf" \
      --cluster-node-timeout 2000 --logfile "$dir/node-$p/redis.log" &
    PIDS+=($!)
  done
  for p in "${ports[@]}"; do
    wait_for_redis "$dir/node-$p/redis.log" || return 1
    seeds+=("127.0.0.1:$p")
  done
  local i lo hi
  for ((i = 0; i < primaries; i++)); do
    lo=$((16384 * i / primaries)); hi=$((16384 * (i + 1) / primaries - 1))
    redis-cli -p "${ports[$i]}" cluster addslotsrange "$lo" "$hi" >/dev/null
  done
  for p in "${ports[@]:1}"; do redis-cli -p "$p" cluster meet 127.0.0.1 "${ports[0]}" >/dev/null; done
  local ok=0 want=$total
  for _ in $(seq 200); do
    ok=0
    for p in "${ports[@]}"; do
      [ "$(redis-cli -p "$p" cluster nodes 2>/dev/null | wc -l)" -eq "$total" ] && ok=$((ok + 1))
    done
    [ "$ok" -eq "$want" ] && break
    sleep 0.1
  done
  # Replica r of primary i is node primaries + i * replicas + r.
  local id r
  for ((i = 0; i < primaries; i++)); do
    id=$(redis-cli -p "${ports[$i]}" cluster myid)
    for ((r = 0; r < replicas; r++)); do
      # Refused ("Unknown node") until the replica has heard of the primary: try again.
      for _ in $(seq 100); do
        [ "$(redis-cli -p "${ports[$((primaries + i * replicas + r))]}" cluster replicate "$id")" = OK ] && break
        sleep 0.1
      done
    done
  done
  # Every node cluster_state:ok, and every node sees every replica.
  for _ in $(seq 300); do
    ok=0
    for p in "${ports[@]}"; do
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q "cluster_state:ok" &&
        [ "$(redis-cli -p "$p" cluster nodes 2>/dev/null | grep -c slave)" -eq $((primaries * replicas)) ] &&
        ok=$((ok + 1))
    done
    [ "$ok" -eq "$total" ] && break
    sleep 0.1
  done
  [ "$ok" -eq "$total" ] || { echo "the cluster did not settle (cluster_state:ok, $((primaries * replicas)) replicas)" >&2; return 1; }
  CLUSTER_URL="redis+cluster://$(IFS=,; echo "${seeds[*]:0:$primaries}")"
}
