#!/usr/bin/env bash
# The real-service testbed: three docker-registry instances, a dockerd, a separate containerd and a
# daemonless podman/skopeo configuration, all on 127.0.0.1 and all living under one state dir.
#
#   scripts/testbed.sh up        install what is missing, start everything (idempotent)
#   scripts/testbed.sh seed      build the test images locally and push them (idempotent)
#   scripts/testbed.sh env       `export K=V` lines:  eval "$(scripts/testbed.sh env)"
#   scripts/testbed.sh env --json   the same as one JSON object (plus the seeded images)
#   scripts/testbed.sh status    exit 0 when every service answers
#   scripts/testbed.sh down      stop everything, unmount, remove the state dir
#
# State dir: ${AIRLOCK_TESTBED_DIR:-/tmp/airlock-testbed}. Needs root (dockerd, containerd).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
STATE="${AIRLOCK_TESTBED_DIR:-/tmp/airlock-testbed}"
case "$STATE" in /*) ;; *) STATE="$PWD/$STATE" ;; esac
STATE="${STATE%/}"

PORT_OPEN=5301
PORT_AUTH=5302
PORT_TARGET=5303
TB_USER=airlock
TB_PASS=tb-s3cret-pass
REGISTRIES=(open auth target)
SERVICES=(registry-open registry-auth registry-target dockerd containerd)

PIDS="$STATE/pids"
LOGS="$STATE/logs"
DOCKER_SOCK="$STATE/docker.sock"
CTRD_SOCK="$STATE/containerd/containerd.sock"
PODMAN_DIR="$STATE/podman"
UP_TIMEOUT="${AIRLOCK_TESTBED_TIMEOUT:-60}"

export PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { printf 'testbed: ERROR: %s\n' "$*" >&2; exit 1; }

port_of() { case "$1" in open) echo $PORT_OPEN ;; auth) echo $PORT_AUTH ;; target) echo $PORT_TARGET ;; esac; }

# ------------------------------------------------------------------ packages

# command -> Debian package providing it
PKG_MAP=(
  "docker-registry:docker-registry"
  "dockerd:docker.io"
  "containerd:containerd"
  "ctr:containerd"
  "runc:runc"
  "crun:crun"
  "podman:podman"
  "skopeo:skopeo"
  "htpasswd:apache2-utils"
  "gpg:gnupg"
  "newuidmap:uidmap"
  "curl:curl"
  "sqop:sqop"
  "zstd:zstd"
  "zsh:zsh"
)

ensure_packages() {
  local missing=() entry cmd pkg
  for entry in "${PKG_MAP[@]}"; do
    cmd="${entry%%:*}"; pkg="${entry#*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  # The images need a STATIC busybox (Debian's plain `busybox` package is dynamically linked).
  if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then missing+=(busybox-static); fi
  # docker CLI: docker.io ships /usr/bin/docker (a newer client elsewhere in PATH is fine too)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  [ ${#missing[@]} -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root to install them"
  log "installing: ${missing[*]}"
  local alog="$STATE/logs/apt.log"
  mkdir -p "$STATE/logs"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; } >"$alog" 2>&1; then
    tail -n 30 "$alog" >&2
    die "apt-get install failed (log: $alog)"
  fi
}

# ------------------------------------------------------------------ process helpers

pid_alive() { # pidfile
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A zombie or a recycled pid of something else does not count.
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  ours "$pid"
}

# Every process we start names the state dir in its arguments: never signal a pid that does not.
ours() { # pid
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$STATE/"
}

healthy() { # service
  case "$1" in
    registry-open|registry-target)
      [ "$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$(port_of "${1#registry-}")/v2/")" = 200 ] ;;
    registry-auth)
      [ "$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$PORT_AUTH/v2/")" = 401 ] ;;
    dockerd)
      [ -S "$DOCKER_SOCK" ] && timeout 10 docker -H "unix://$DOCKER_SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1 ;;
    containerd)
      [ -S "$CTRD_SOCK" ] && timeout 10 ctr -a "$CTRD_SOCK" version >/dev/null 2>&1 ;;
  esac
}

# Start "$@" in the background as service $name unless it is already running.
start_bg() { # name cmd...
  local name="$1"; shift
  local pf="$PIDS/$name.pid" lf="$LOGS/$name.log"
  if pid_alive "$pf"; then return 0; fi
  rm -f "$pf"
  : >"$lf"
  # setsid: own session, so no terminal or the caller's process group signals reach it.
  # 9>&-: the daemons must not inherit (and so keep holding) the testbed.sh lock.
  setsid "$@" </dev/null >>"$lf" 2>&1 9>&- &
  echo $! >"$pf"
}

wait_healthy() { # name
  local name="$1" pf="$PIDS/$1.pid" deadline=$((SECONDS + UP_TIMEOUT))
  while :; do
    if healthy "$name"; then return 0; fi
    if ! pid_alive "$pf"; then
      log "$name exited during start-up; last log lines:"
      tail -n 25 "$LOGS/$name.log" >&2 || true
      die "$name failed to start (log: $LOGS/$name.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$name did not answer within ${UP_TIMEOUT}s; last log lines:"
      tail -n 25 "$LOGS/$name.log" >&2 || true
      die "$name not healthy (log: $LOGS/$name.log)"
    fi
    sleep 0.2
  done
}

stop_pidfile() { # pidfile [seconds]
  local pf="$1" secs="${2:-20}" pid i
  [ -s "$pf" ] || { rm -f "$pf"; return 0; }
  pid="$(cat "$pf" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
      log "pid $pid ($pf) ignored SIGTERM for ${secs}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$pf"
}

# ------------------------------------------------------------------ configuration

write_configs() {
  mkdir -p "$PIDS" "$LOGS" "$STATE/run" "$STATE/docker-config"
  local r port
  for r in "${REGISTRIES[@]}"; do
    port="$(port_of "$r")"
    mkdir -p "$STATE/registry/$r/data"
    {
      cat <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STATE/registry/$r/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: airlock-testbed-$r
  headers:
    X-Content-Type-Options: [nosniff]
EOF
      if [ "$r" = auth ]; then
        cat <<EOF
auth:
  htpasswd:
    realm: airlock-testbed
    path: $STATE/registry/auth/htpasswd
EOF
      fi
    } >"$STATE/registry/$r/config.yml"
  done
  if [ ! -s "$STATE/registry/auth/htpasswd" ]; then
    htpasswd -Bbn "$TB_USER" "$TB_PASS" >"$STATE/registry/auth/htpasswd.tmp"
    mv "$STATE/registry/auth/htpasswd.tmp" "$STATE/registry/auth/htpasswd"
  fi

  mkdir -p "$STATE/containerd/root" "$STATE/containerd/state" "$STATE/containerd/opt"
  cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
EOF

  mkdir -p "$STATE/docker/data" "$STATE/docker/exec"

  mkdir -p "$PODMAN_DIR/graph" "$PODMAN_DIR/run" "$PODMAN_DIR/tmp" "$PODMAN_DIR/networks" "$PODMAN_DIR/volumes"
  cat >"$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$PODMAN_DIR/graph"
runroot = "$PODMAN_DIR/run"
EOF
  {
    echo 'unqualified-search-registries = []'
    for r in "${REGISTRIES[@]}"; do
      printf '\n[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$(port_of "$r")"
    done
  } >"$PODMAN_DIR/registries.conf"
  # Podman raises nofile/nproc to 1048576 for root, which fails without CAP_SYS_RESOURCE (some CI
  # sandboxes): pin them to limits we actually have.
  local nofile nproc
  nofile="$(ulimit -Hn)"; nproc="$(ulimit -Hu)"
  [ "$nofile" = unlimited ] && nofile=1048576
  # (conmon/podman run the OCI runtime with nproc capped at 32768, so never ask for more)
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  cat >"$PODMAN_DIR/containers.conf" <<EOF
[containers]
netns = "host"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
# crun refuses hybrid cgroup v1/v2 hosts; runc (docker's runtime) copes with both.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
tmp_dir = "$PODMAN_DIR/tmp"
volume_path = "$PODMAN_DIR/volumes"

[network]
network_config_dir = "$PODMAN_DIR/networks"
EOF
  [ -s "$PODMAN_DIR/auth.json" ] || echo '{"auths":{}}' >"$PODMAN_DIR/auth.json"
}

# ------------------------------------------------------------------ commands

service_cmd() { # name -> argv on stdout, one per line
  case "$1" in
    registry-*) printf '%s\n' docker-registry serve "$STATE/registry/${1#registry-}/config.yml" ;;
    dockerd)
      printf '%s\n' dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
        --data-root "$STATE/docker/data" --exec-root "$STATE/docker/exec" \
        -H "unix://$DOCKER_SOCK" --pidfile "$STATE/run/dockerd.pid" \
        --insecure-registry "127.0.0.1:$PORT_OPEN" --insecure-registry "127.0.0.1:$PORT_AUTH" \
        --insecure-registry "127.0.0.1:$PORT_TARGET" --userland-proxy=false --log-level=warn ;;
    containerd) printf '%s\n' containerd --config "$STATE/containerd/config.toml" \
        --root "$STATE/containerd/root" --state "$STATE/containerd/state" --address "$CTRD_SOCK" ;;
  esac
}

all_healthy() {
  local s
  for s in "${SERVICES[@]}"; do
    pid_alive "$PIDS/$s.pid" || return 1
    healthy "$s" || return 1
  done
}

cmd_up() {
  local t0=$SECONDS s
  if [ -d "$STATE" ] && all_healthy; then log "already up ($STATE)"; return 0; fi
  [ "$(id -u)" = 0 ] || die "must run as root (dockerd and containerd need it)"
  mkdir -p "$STATE"
  ensure_packages
  write_configs
  for s in "${SERVICES[@]}"; do
    if pid_alive "$PIDS/$s.pid"; then
      continue
    fi
    # A half-started previous run may have left a socket or dockerd's own pidfile behind.
    case "$s" in
      dockerd)
        rm -f "$DOCKER_SOCK"
        pid_alive "$STATE/run/dockerd.pid" || rm -f "$STATE/run/dockerd.pid"
        # The containerd a dead dockerd managed: stop it if it survived, and drop its pidfile (a
        # zombie's pid still answers kill -0, and dockerd would wait for it forever).
        stop_pidfile "$STATE/docker/exec/containerd/containerd.pid" 10
        ;;
      containerd) rm -f "$CTRD_SOCK" "$CTRD_SOCK.ttrpc" ;;
    esac
    local argv=()
    mapfile -t argv < <(service_cmd "$s")
    start_bg "$s" "${argv[@]}"
  done
  for s in "${SERVICES[@]}"; do wait_healthy "$s"; done
  log "up in $((SECONDS - t0))s ($STATE)"
}

cmd_status() {
  local s rc=0
  for s in "${SERVICES[@]}"; do
    if pid_alive "$PIDS/$s.pid" && healthy "$s"; then
      printf '%-16s up   (pid %s)\n' "$s" "$(cat "$PIDS/$s.pid")"
    else
      printf '%-16s DOWN\n' "$s"; rc=1
    fi
  done
  if [ -s "$STATE/seed.json" ]; then echo "seeded          yes"; else echo "seeded          no"; fi
  return $rc
}

cmd_down() {
  local s
  if [ ! -d "$STATE" ]; then log "nothing to take down ($STATE absent)"; return 0; fi
  # Containers first, so their shims and mounts go away cleanly.
  if pid_alive "$PIDS/dockerd.pid" && [ -S "$DOCKER_SOCK" ]; then
    local ids
    ids="$(timeout 20 docker -H "unix://$DOCKER_SOCK" ps -aq 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [ -z "$ids" ] || timeout 60 docker -H "unix://$DOCKER_SOCK" rm -f $ids >/dev/null 2>&1 || true
  fi
  # containerd tasks outlive containerd itself (their shims keep running): kill them explicitly.
  if pid_alive "$PIDS/containerd.pid" && [ -S "$CTRD_SOCK" ]; then
    local ns t c
    for ns in $(timeout 10 ctr -a "$CTRD_SOCK" namespaces ls -q 2>/dev/null || true); do
      for t in $(timeout 10 ctr -a "$CTRD_SOCK" -n "$ns" tasks ls -q 2>/dev/null || true); do
        timeout 30 ctr -a "$CTRD_SOCK" -n "$ns" tasks rm -f "$t" >/dev/null 2>&1 || true
      done
      for c in $(timeout 10 ctr -a "$CTRD_SOCK" -n "$ns" containers ls -q 2>/dev/null || true); do
        timeout 30 ctr -a "$CTRD_SOCK" -n "$ns" containers rm "$c" >/dev/null 2>&1 || true
      done
    done
  fi
  if [ -s "$PODMAN_DIR/storage.conf" ] && command -v podman >/dev/null 2>&1; then
    CONTAINERS_STORAGE_CONF="$PODMAN_DIR/storage.conf" CONTAINERS_CONF="$PODMAN_DIR/containers.conf" \
      CONTAINERS_REGISTRIES_CONF="$PODMAN_DIR/registries.conf" \
      timeout 60 podman rm -af -t 0 >/dev/null 2>&1 || true
  fi
  for s in dockerd containerd registry-open registry-auth registry-target; do
    stop_pidfile "$PIDS/$s.pid" 30
  done
  # dockerd's own pidfile (if our record was lost) and the containerd it manages.
  stop_pidfile "$STATE/run/dockerd.pid" 30
  stop_pidfile "$STATE/docker/exec/containerd/containerd.pid" 10
  # Leftover shims of our containerd or docker's (their sockets/dirs live under the state dir).
  local pid
  # (matched by the exact socket address below our state dir, so nothing else is touched)
  for pid in $(pgrep -f "containerd-shim.* -address $STATE/" 2>/dev/null || true); do kill -KILL "$pid" 2>/dev/null || true; done
  # Unmount everything below the state dir, deepest first.
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk -v s="$STATE" '{ gsub(/\\040/, " ", $5); if (index($5, s "/") == 1 || $5 == s) print $5 }' /proc/self/mountinfo | sort -r)
  rm -rf "$STATE" 2>/dev/null || { sleep 1; rm -rf "$STATE"; }
  log "down ($STATE removed)"
}

cmd_seed() {
  local t0=$SECONDS
  all_healthy || die "testbed is not up; run: scripts/testbed.sh up"
  local tsx="$ROOT/node_modules/.bin/tsx"
  [ -x "$tsx" ] || die "tsx not found at $tsx (run npm ci first)"
  "$tsx" "$HERE/testbed/seed.ts" "$STATE"
  log "seeded in $((SECONDS - t0))s"
}

env_pairs() {
  cat <<EOF
AIRLOCK_TESTBED_DIR=$STATE
TESTBED_REGISTRY_OPEN=127.0.0.1:$PORT_OPEN
TESTBED_REGISTRY_AUTH=127.0.0.1:$PORT_AUTH
TESTBED_REGISTRY_TARGET=127.0.0.1:$PORT_TARGET
TESTBED_AUTH_USER=$TB_USER
TESTBED_AUTH_PASSWORD=$TB_PASS
DOCKER_HOST=unix://$DOCKER_SOCK
DOCKER_CONFIG=$STATE/docker-config
CONTAINERD_ADDRESS=$CTRD_SOCK
CONTAINERD_NAMESPACE=default
CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
CONTAINERS_REGISTRIES_CONF=$PODMAN_DIR/registries.conf
CONTAINERS_CONF=$PODMAN_DIR/containers.conf
REGISTRY_AUTH_FILE=$PODMAN_DIR/auth.json
EOF
}

cmd_env() {
  local fmt=shell
  [ "${1:-}" = --json ] && fmt=json
  env_pairs | node "$HERE/testbed/env.mjs" "$fmt" "$STATE/seed.json"
}

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

# up/seed/down of the same state dir never run at once (the lock file sits beside the state dir,
# which down removes).
lock() {
  exec 9>"$STATE.lock"
  flock -w 300 9 || die "another testbed.sh holds $STATE.lock"
}

case "${1:-}" in
  up) lock; cmd_up ;;
  seed) lock; cmd_seed ;;
  down) lock; cmd_down ;;
  status) cmd_status ;;
  env) shift; cmd_env "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
