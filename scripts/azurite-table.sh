#!/usr/bin/env bash
# Run the Azurite Table service for local tests, benchmarks and the demo.
#
#   scripts/azurite-table.sh start    in memory; AZURITE_PERSIST=1 keeps data in $AZURITE_DIR/data
#   scripts/azurite-table.sh stop     SIGINT, so a persistent DB is flushed before exit
#   scripts/azurite-table.sh status   exit 0 if running, 3 if not
#
# Environment (relative paths are relative to the repository root):
#   AZURITE_DIR            .azurite    npm prefix holding node_modules/.bin/azurite-table
#   AZURITE_TABLE_HOST     127.0.0.1
#   AZURITE_TABLE_PORT     10002
#   AZURITE_PERSIST        0           1 = --location $AZURITE_DIR/data instead of --inMemoryPersistence
#   AZURITE_START_TIMEOUT  15          seconds to wait for the port to accept connections
#
# The node script is started directly, never through npx: npx does not forward
# signals, and Azurite only shuts down cleanly on SIGINT.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${AZURITE_DIR:-.azurite}
host=${AZURITE_TABLE_HOST:-127.0.0.1}
port=${AZURITE_TABLE_PORT:-10002}
persist=${AZURITE_PERSIST:-0}
start_timeout=${AZURITE_START_TIMEOUT:-15}

bin="$dir/node_modules/.bin/azurite-table"
pidfile="$dir/azurite-table.pid"
logfile="$dir/azurite-table.log"
endpoint="http://$host:$port/devstoreaccount1"

log() { echo "azurite-table: $*"; }
die() { echo "azurite-table: $*" >&2; exit 1; }

# port_open succeeds when something accepts TCP connections on host:port.
port_open() {
  if command -v timeout >/dev/null 2>&1; then
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
  fi
}

# our_pid prints the PID from the pid file if that process is alive and is
# Azurite, so a recycled PID is never signalled. Removes a stale pid file.
our_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    if [ ! -r "/proc/$pid/cmdline" ] || grep -qa azurite "/proc/$pid/cmdline"; then
      echo "$pid"
      return 0
    fi
  fi
  rm -f "$pidfile"
  return 1
}

start() {
  [ -x "$bin" ] || die "not installed: $bin is missing (run: make setup)"

  local pid
  if pid=$(our_pid); then
    if port_open; then
      log "already running (pid $pid) on $endpoint"
      return 0
    fi
    die "pid $pid is running but $host:$port does not accept connections; see $logfile or run: $0 stop"
  fi
  if port_open; then
    die "$host:$port is already in use by a process this script did not start; stop it or set AZURITE_TABLE_PORT"
  fi

  local args=(--tableHost "$host" --tablePort "$port" --disableTelemetry --silent)
  local mode
  if [ "$persist" = 1 ]; then
    mkdir -p "$dir/data"
    args+=(--location "$dir/data")
    mode="persistent ($dir/data)"
  else
    args+=(--inMemoryPersistence)
    mode="in memory"
  fi

  nohup "$bin" "${args[@]}" >"$logfile" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pidfile"

  local deadline=$((SECONDS + start_timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if port_open; then
      log "ready on $endpoint (pid $pid, $mode)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      echo "azurite-table: exited during startup; log follows" >&2
      cat "$logfile" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  echo "azurite-table: $host:$port did not open within ${start_timeout}s; log follows" >&2
  cat "$logfile" >&2 || true
  kill -INT "$pid" 2>/dev/null || true
  exit 1
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    log "not running"
    if port_open; then
      log "note: $host:$port is in use by a process this script did not start; left alone"
    fi
    return 0
  fi

  kill -INT "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do # up to 10 s for the final DB save
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIGINT for 10s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"

  for i in $(seq 1 50); do # the socket can outlive the process briefly
    port_open || break
    sleep 0.1
  done
  log "stopped (pid $pid)"
}

status() {
  local pid
  if pid=$(our_pid); then
    if port_open; then
      log "running (pid $pid) on $endpoint"
      return 0
    fi
    log "pid $pid is running but $host:$port is closed"
    return 1
  fi
  if port_open; then
    log "not running; $host:$port is in use by another process"
  else
    log "not running"
  fi
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
