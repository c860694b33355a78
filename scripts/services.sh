#!/usr/bin/env bash
# Make sure the services the tests talk to are running: PostgreSQL on 127.0.0.1:5432 and
# MariaDB on 127.0.0.1:3306, and jq for the README examples. Installs them from Debian's packages and starts them if none answers.
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

mysql_up() {
  command -v mysqladmin >/dev/null 2>&1 && mysqladmin -uroot -h127.0.0.1 -P3306 status >/dev/null 2>&1
}

ensure_mariadb() {
  if [ -n "${EGRESS_TEST_MYSQL_URL:-}" ]; then return 0; fi
  mysql_up && return 0
  if [ ! -x /usr/sbin/mariadbd ]; then
    command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] || fail "MariaDB is not installed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server >/dev/null \
      || fail "apt-get install mariadb-server failed"
  fi
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 \
    || fail "could not start mariadbd"
  for _ in $(seq 1 60); do mysql_up && break; sleep 0.5; done
  mysql_up || fail "MariaDB did not come up on 127.0.0.1:3306"
  # Debian's root uses unix_socket auth; the tests connect over TCP with an empty password.
  mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')" >/dev/null 2>&1 || true
}

# The README's shell examples (run verbatim by a test) pipe through jq.
ensure_jq() {
  command -v jq >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] || fail "jq is not installed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq >/dev/null || fail "apt-get install jq failed"
}

ensure_jq
ensure_postgres
echo "services: PostgreSQL ready"
ensure_mariadb
echo "services: MariaDB ready"
