# Sourced by binder/postBuild and binder/start: a PostgreSQL of the notebook user's own, in the
# git-ignored .workshop/ folder, with the docker-compose credentials (workshop / workshop).
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PG_DATA="$PWD/.workshop/binder/postgres"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
PG_OPTIONS="-c listen_addresses=127.0.0.1 -c port=$POSTGRES_PORT -c unix_socket_directories=/tmp"

init_postgres() {
    [ -f "$PG_DATA/PG_VERSION" ] && return 0
    mkdir -p "$(dirname "$PG_DATA")"
    "$PG_BIN/initdb" -D "$PG_DATA" -U workshop --pwfile=<(echo workshop) \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null &&
    start_postgres &&
    "$PG_BIN/createdb" -h /tmp -p "$POSTGRES_PORT" -U workshop workshop &&
    "$PG_BIN/pg_ctl" -D "$PG_DATA" -w stop >/dev/null
}

start_postgres() {
    "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA.log" -o "$PG_OPTIONS" -w start >/dev/null
}
