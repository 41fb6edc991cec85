#!/usr/bin/env bash
# CI: a PostgreSQL server on 127.0.0.1:5432 with a database and a user for tests/test_tune.py's shared-study
# test (its URL: postgresql://trader:trader@127.0.0.1:5432/trader, or $TRADER_TEST_POSTGRES_URL).
#
# Debian/Ubuntu: installs Debian's `postgresql` with apt-get when it is missing, starts (creating it if
# needed) a cluster on port 5432, creates the user and the database. Safe to run again. Needs root or
# passwordless sudo. Prints nothing on success; on failure it says what failed, shows the log and exits 1
# (the test then skips, saying no server answers).
set -euo pipefail

PORT=5432
DB_USER=trader
DB_PASSWORD=trader
DB_NAME=trader

log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() {
    echo ".ci/postgres.sh: $*" >&2
    sed 's/^/  | /' "$log" >&2
    exit 1
}

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || fail "needs root or passwordless sudo"
    as_root=(sudo -n)
fi

# ---------------------------------------------------------------- install
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || fail "no apt-get here: install PostgreSQL and create the user and database yourself"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$log" 2>&1 || fail "apt-get update failed"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >>"$log" 2>&1 \
        || fail "apt-get install postgresql failed"
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)

# ---------------------------------------------------------------- a cluster on the port, running
# Installing the package creates the cluster "main" (postgresql-common); create one if it did not.
if ! pg_lsclusters -h 2>>"$log" | awk -v port="$PORT" '$3 == port {found = 1} END {exit !found}'; then
    "${as_root[@]}" pg_createcluster "$version" main --port "$PORT" >>"$log" 2>&1 \
        || fail "pg_createcluster $version main --port $PORT failed"
fi
read -r cluster_version cluster_name cluster_status < <(pg_lsclusters -h | awk -v port="$PORT" '$3 == port {print $1, $2, $4; exit}')
if [ "$cluster_status" != "online" ]; then
    "${as_root[@]}" pg_ctlcluster "$cluster_version" "$cluster_name" start >>"$log" 2>&1 \
        || fail "pg_ctlcluster $cluster_version $cluster_name start failed"
fi
for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || fail "the server does not answer on 127.0.0.1:$PORT"

# ---------------------------------------------------------------- user and database
as_postgres() {  # psql as the postgres superuser over the local socket
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@")
    else
        (cd / && sudo -n -u postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@")
    fi
}
as_postgres -c "DO \$\$ BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
        ALTER ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
    ELSE
        CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
    END IF;
END \$\$;" >>"$log" 2>&1 || fail "could not create the user $DB_USER"
exists=$(as_postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" 2>>"$log") \
    || fail "could not list databases"
if [ "$exists" != "1" ]; then
    as_postgres -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >>"$log" 2>&1 || fail "could not create the database $DB_NAME"
fi

# ---------------------------------------------------------------- the test's own way in: TCP, password
answer=$(PGPASSWORD=$DB_PASSWORD psql -X -tA -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d "$DB_NAME" -c "SELECT 1" 2>>"$log") \
    || fail "cannot log in as $DB_USER on 127.0.0.1:$PORT"
[ "$answer" = "1" ] || fail "unexpected answer from the server: $answer"
