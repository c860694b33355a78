#!/usr/bin/env bash
# Make sure the services the tests talk to are running: PostgreSQL on 127.0.0.1:5432.
# Installs PostgreSQL 15 from Debian's packages and starts a cluster if none answers.
# With CI=true a service that cannot be started fails the run (tests never skip silently).
set -uo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
fail() {
  echo "services: $*" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "services: continuing; tests needing it will be skipped (CI=true makes this fatal)" >&2
  exit 0
}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }

ensure_postgres() {
  if [ -n "${EGRESS_TEST_POSTGRES_URL:-}" ]; then return 0; fi
  command -v pg_isready >/dev/null 2>&1 || {
    command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] || fail "PostgreSQL client tools missing"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >/dev/null || fail "apt-get install postgresql-15 failed"
  }
  pg_up && return 0
  # A Debian cluster that is merely stopped.
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for v in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start >/dev/null 2>&1 || true
    done
    for _ in $(seq 1 30); do pg_up && return 0; sleep 0.5; done
  fi
  # No cluster at all: a throwaway one, trust auth, owned by the postgres user.
  local bindir datadir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$bindir" ] || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >/dev/null || fail "apt-get install postgresql-15 failed"
    bindir=/usr/lib/postgresql/15/bin
  }
  datadir=/tmp/egress-test-pg
  if [ ! -s "$datadir/PG_VERSION" ]; then
    rm -rf "$datadir"; mkdir -p "$datadir"; chown postgres "$datadir" 2>/dev/null || true
    runuser -u postgres -- "$bindir/initdb" -D "$datadir" -U postgres --auth=trust >/dev/null \
      || "$bindir/initdb" -D "$datadir" -U postgres --auth=trust >/dev/null \
      || fail "initdb failed"
  fi
  (runuser -u postgres -- "$bindir/pg_ctl" -D "$datadir" -l "$datadir/log" -w \
      -o "-h $PG_HOST -p $PG_PORT -k /tmp" start \
    || "$bindir/pg_ctl" -D "$datadir" -l "$datadir/log" -w -o "-h $PG_HOST -p $PG_PORT -k /tmp" start) >/dev/null \
    || fail "pg_ctl start failed (see $datadir/log)"
  for _ in $(seq 1 30); do pg_up && return 0; sleep 0.5; done
  fail "PostgreSQL did not come up on $PG_HOST:$PG_PORT"
}

ensure_postgres
echo "services: PostgreSQL ready"
