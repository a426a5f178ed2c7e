#!/usr/bin/env bash
# PostgreSQL for the dock's one-machine cluster (Debian's postgresql package, no system service needed).
#
#   postgres.sh init   PGROOT PORT    # initdb (once), role `lwdock` + databases `prefect` and `mlflow`
#   postgres.sh start  PGROOT PORT    # pg_ctl start in its own session, 127.0.0.1 only; waits until it accepts
#   postgres.sh stop   PGROOT         # fast shutdown (rolls back open transactions), waits
#   postgres.sh status PGROOT         # exit 0 when running
#   postgres.sh psql   PGROOT PORT [psql args...]
#
# PGROOT holds data/ (the cluster), run/ (the unix socket, mode 0700) and postgres.log. The password of role
# `lwdock` comes from $LWDOCK_PG_PASSWORD (init only); TCP logins need it (scram-sha-256), the socket is
# trusted but reachable only by its owner. initdb refuses to run as root, so as root everything runs as the
# `postgres` user (runuser) on a PGROOT it owns; as another user it runs as that user.
set -euo pipefail

cmd=${1:?usage: postgres.sh init|start|stop|status|psql PGROOT [PORT]}
root=${2:?PGROOT missing}
port=${3:-}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
  echo "postgres.sh: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): apt-get install -y postgresql" >&2
  exit 3
fi
data=$root/data
run=$root/run
log=$root/postgres.log

as_owner() {  # run a command as the owner of the PostgreSQL files
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

prepare_dirs() {
  mkdir -p "$root" "$run"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$root" "$run"; fi
  chmod 0700 "$root" "$run"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -w "$root"; then
    echo "postgres.sh: user postgres cannot reach $root (a parent directory is closed to it); use a PGROOT it can reach" >&2
    exit 4
  fi
}

psql_() { as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$run" -p "${port:?PORT missing}" -U postgres "$@"; }

case "$cmd" in
  init)
    prepare_dirs
    if [ ! -f "$data/PG_VERSION" ]; then
      as_owner "$PGBIN/initdb" -D "$data" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$root/initdb.log" 2>&1 \
        || { cat "$root/initdb.log" >&2; exit 1; }
    fi
    ;;
  start)
    prepare_dirs
    : "${port:?PORT missing}"
    if as_owner "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then exit 0; fi
    # own session: a Ctrl-C in the terminal that ran `lwdock cluster up` must not reach the postmaster
    as_owner setsid --wait "$PGBIN/pg_ctl" -D "$data" -l "$log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $run -c unix_socket_permissions=0700" start >/dev/null \
      || { tail -n 20 "$log" >&2; exit 1; }
    ;;
  createdbs)
    : "${LWDOCK_PG_PASSWORD:?LWDOCK_PG_PASSWORD missing}"
    psql_ -d postgres <<SQL
SELECT 'CREATE ROLE lwdock LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lwdock')\gexec
ALTER ROLE lwdock PASSWORD '${LWDOCK_PG_PASSWORD}';
SELECT 'CREATE DATABASE prefect OWNER lwdock' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'prefect')\gexec
SELECT 'CREATE DATABASE mlflow OWNER lwdock' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow')\gexec
SQL
    ;;
  stop)
    if [ -f "$data/postmaster.pid" ]; then
      as_owner "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
  status)
    as_owner "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1
    ;;
  psql)
    shift 3
    psql_ "$@"
    ;;
  *)
    echo "postgres.sh: unknown command $cmd" >&2; exit 2 ;;
esac
