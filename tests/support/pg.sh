# A private PostgreSQL for the shell harnesses (scripts/cluster.sh): Debian's
# binaries under /usr/lib/postgresql/*/bin, a fresh data directory in a temp
# dir, its own loopback port, run as user postgres when started as root.
# The shared server at 5432 is never touched.
# shellcheck shell=bash

pgbin=""
pgversion=""
pg_dir=""
pg_port=""

# Sets $pgbin to the newest installed major version (the glob sorts 9.6
# after 16: compare numerically); false when none is installed.
pg_find() {
    local dir version
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] || continue
        version="$(basename "$(dirname "$dir")")"
        if [ -z "$pgbin" ] || [ "$(printf '%s\n%s\n' "$pgversion" "$version" | sort -V | tail -n1)" = "$version" ]; then
            pgbin="$dir"
            pgversion="$version"
        fi
    done
    [ -n "$pgbin" ]
}

# PostgreSQL refuses to run as root: as root, run it as user postgres.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Free loopback ports, distinct (the kernel picks; closed again).
free_ports() { # count
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
' "$1"
}

# initdb into $1 (a new directory, made reachable for user postgres) and
# start on port $2; `pg_private_stop` stops it. Trust authentication on
# loopback only.
pg_private_start() { # dir port
    pg_dir="$1"
    pg_port="$2"
    mkdir -p "$pg_dir"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || { echo "running as root, but there is no postgres user" >&2; return 1; }
        chown postgres: "$pg_dir"
    fi
    chmod 700 "$pg_dir"
    as_pg "$pgbin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 >"$pg_dir/initdb.log" 2>&1 ||
        { cat "$pg_dir/initdb.log" >&2; return 1; }
    as_pg "$pgbin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -t 60 \
        -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=60" start >/dev/null
}

pg_private_stop() {
    [ -n "$pg_dir" ] && [ -d "$pg_dir/data" ] || return 0
    as_pg "$pgbin/pg_ctl" -D "$pg_dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        as_pg "$pgbin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1
    return 0
}
