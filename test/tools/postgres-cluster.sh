#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: Debian's PostgreSQL 15, installed when missing.
#   postgres-cluster.sh start DIR   creates a cluster in DIR (an empty folder), starts it on a free loopback port and
#                                   prints its connection string on stdout (progress goes to stderr)
#   postgres-cluster.sh stop DIR    stops the cluster in DIR and removes DIR
# The server runs as the postgres user (never as root), listens on 127.0.0.1 only, trusts local connections (a test
# cluster holds nothing worth a password) and keeps its socket in DIR. Idempotent: start on a running cluster prints its
# connection string again; stop on a missing cluster removes what is left.
set -euo pipefail

PG_VERSION=15
BIN="/usr/lib/postgresql/$PG_VERSION/bin"

as_postgres() {
  if [[ "$(id -un)" == "postgres" ]]; then
    "$@"
  elif [[ "$(id -u)" -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    echo "postgres-cluster: run as root (the server is started as the postgres user) or as postgres" >&2
    exit 1
  fi
}

install() {
  if [[ -x "$BIN/initdb" && -x "$BIN/pg_ctl" ]] && id postgres >/dev/null 2>&1; then
    return
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "postgres-cluster: $BIN/initdb is missing and installing PostgreSQL needs root (apt-get install postgresql)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "postgresql-$PG_VERSION" >&2 || apt-get install -y -q --no-install-recommends postgresql >&2
  # The package's own cluster is not used: the tests run their own.
  if command -v pg_ctlcluster >/dev/null 2>&1; then pg_ctlcluster "$PG_VERSION" main stop >/dev/null 2>&1 || true; fi
}

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

start() {
  local dir="$1"
  install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [[ -f "$dir/port" ]] && as_postgres "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    echo "Host=127.0.0.1;Port=$(cat "$dir/port");Username=postgres;Database=postgres"
    return
  fi
  chown postgres "$dir" 2>/dev/null || true
  chmod 0755 "$dir"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_postgres "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  local port tries=0
  while true; do
    port="$(free_port)"
    if as_postgres "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=300 -c shared_buffers=128MB -c fsync=on -c synchronous_commit=on" \
        start >&2; then
      break
    fi
    tries=$((tries + 1))
    if [[ $tries -ge 5 ]]; then
      echo "postgres-cluster: the server did not start; its log:" >&2
      tail -n 30 "$dir/server.log" >&2 || true
      exit 1
    fi
  done
  echo "$port" >"$dir/port"
  echo "Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
}

stop() {
  local dir="$1"
  [[ -d "$dir" ]] || return 0
  if [[ -f "$dir/data/PG_VERSION" ]]; then
    as_postgres "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "${2:?usage: postgres-cluster.sh start DIR}" ;;
  stop) stop "${2:?usage: postgres-cluster.sh stop DIR}" ;;
  *) echo "usage: postgres-cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
