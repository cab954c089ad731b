#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
# A local cluster (issue 12 §6): a private PostgreSQL, two `wxfed serve`
# instances on it (one master key) and nginx in front as a round-robin load
# balancer, all on loopback; then a smoke test through the balancer
# (scripts/cluster-smoke.py): a login and /authorize on instance A, the code
# redeemed on B, throttling by the client's forwarded address, and a key
# rotation seen by both. Everything it started is stopped on exit.
#
#   bash scripts/cluster.sh [path/to/wxfed]
#
# The binary defaults to $CARGO_TARGET_DIR/debug/wxfed (or target/debug/wxfed).
# Debian's packages: PostgreSQL (binaries under /usr/lib/postgresql/*/bin,
# run as user postgres when started as root, fresh data directory and port:
# the server at 5432 is never touched) and nginx-light (its own config,
# pid and logs in the temp dir: the system nginx config is never read);
# either is installed with apt-get when missing.
# CLUSTER_KEEP=1 keeps the temp dir after a passing run (it is kept, path
# printed, after a failing one); CLUSTER_HOLD=1 keeps the cluster running
# after the smoke test until Ctrl-C, to try it in a browser. The run takes
# well under a minute and is cut off after CLUSTER_DEADLINE_SECS (180).
# The last line is `cluster: PASS` or `cluster: FAIL`; the exit status is
# non-zero on failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$repo/target}/debug/wxfed}"
DEADLINE="${CLUSTER_DEADLINE_SECS:-180}"
RELOAD_SECS=2
MAX_FAILURES=3
PASSWORD="cluster smoke password"

HARNESS=cluster
setup_error=""
tmp=""
watchdog_pid=""
nginx_pid=""
declare -A wxfed_pid=()
# shellcheck source=tests/support/harness.sh
source "$repo/tests/support/harness.sh"
# shellcheck source=tests/support/pg.sh
source "$repo/tests/support/pg.sh"

stop_pid() { # pid
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    local rc=$?
    set +e
    [ -n "$watchdog_pid" ] && kill "$watchdog_pid" 2>/dev/null && wait "$watchdog_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && stop_pid "$nginx_pid"
    for name in "${!wxfed_pid[@]}"; do stop_pid "${wxfed_pid[$name]}"; done
    pg_private_stop
    [ "$rc" -eq 130 ] && echo "cluster: interrupted (or past the ${DEADLINE}s deadline)"
    if [ "$rc" -ne 0 ] || [ -n "$setup_error" ]; then
        [ "$rc" -eq 0 ] && rc=1
        if [ -n "$tmp" ]; then
            for name in a b; do print_tail "wxfed $name log" "$tmp/wxfed-$name.log"; done
            print_tail "nginx error log" "$tmp/nginx/error.log"
            print_tail "PostgreSQL log" "$tmp/pg/log"
            echo "cluster: kept $tmp for inspection"
        fi
        echo "cluster: FAIL"
    else
        if [ -n "$tmp" ] && [ "${CLUSTER_KEEP:-0}" = 1 ]; then
            echo "cluster: kept $tmp (CLUSTER_KEEP=1)"
        elif [ -n "$tmp" ]; then
            rm -rf "$tmp"
        fi
        echo "cluster: PASS"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_updated=""
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "$* missing, and installing it needs root (apt-get install $*)"
    if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- preconditions ---------------------------------------------------------
[ -x "$bin" ] || die "no wxfed binary at $bin (build it, or pass its path as \$1)"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
command -v python3 >/dev/null || die "python3 missing (the smoke test)"
command -v curl >/dev/null || die "curl missing"
pg_find || { apt_install postgresql && pg_find; } || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
nginx="$(command -v nginx || true)"
[ -z "$nginx" ] && [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx
if [ -z "$nginx" ]; then
    apt_install nginx-light
    nginx=/usr/sbin/nginx
fi
[ -x "$nginx" ] || die "nginx missing"
psql="$pgbin/psql"
[ -x "$psql" ] || psql="$(command -v psql || true)"
[ -n "$psql" ] || die "psql missing"

# Only the settings this harness gives (tests/support/harness.sh).
clear_wxfed_settings

# The whole run is bounded: past the deadline the EXIT trap cleans up.
start_watchdog "$DEADLINE"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wxfed-cluster.XXXXXX")"
# PostgreSQL (user postgres) and nginx's workers pass through it.
chmod 711 "$tmp"
read -r PG_PORT PORT_A PORT_B LB_PORT < <(free_ports 4) || die "could not pick ports"
LB="http://127.0.0.1:$LB_PORT"
log "temp dir $tmp; PostgreSQL $pgversion :$PG_PORT, wxfed a :$PORT_A b :$PORT_B, nginx :$LB_PORT"

# --- PostgreSQL ------------------------------------------------------------
pg_private_start "$tmp/pg" "$PG_PORT" || die "PostgreSQL did not start (see its log)"
"$psql" -X -q -d "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -c "CREATE DATABASE wxfed" ||
    die "could not create the database"

# --- wxfed ×2 --------------------------------------------------------------
"$bin" keys generate-master >"$tmp/master.key" 2>"$tmp/keys.err" || { cat "$tmp/keys.err"; die "keys generate-master failed"; }
chmod 600 "$tmp/master.key"
# One database, one master key, one issuer (the balancer's URL): to a
# relying party the two instances are one provider. nginx on loopback is
# the trusted proxy whose X-Forwarded-For names the client.
export WXFED_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/wxfed" WXFED_MASTER_KEY_FILE="$tmp/master.key"
export WXFED_ISSUER="$LB" WXFED_TRUSTED_PROXIES=127.0.0.1 WXFED_KEY_RELOAD_SECS=$RELOAD_SECS
export WXFED_LOGIN_MAX_FAILURES_PER_USER_IP=$MAX_FAILURES WXFED_DATABASE_POOL_SIZE=6 WXFED_SHUTDOWN_TIMEOUT_SECS=3

"$bin" config check --connect >"$tmp/config-check.txt" 2>&1 ||
    { cat "$tmp/config-check.txt"; die "wxfed config check failed"; }
log "wxfed config check: $(head -n1 "$tmp/config-check.txt")"

declare -A port=([a]=$PORT_A [b]=$PORT_B)
start_wxfed() { # name
    local name=$1 url="http://127.0.0.1:${port[$1]}"
    WXFED_BIND="127.0.0.1:${port[$name]}" WXFED_DATA_DIR="$tmp/data-$name" \
        "$bin" serve >>"$tmp/wxfed-$name.log" 2>&1 &
    wxfed_pid[$name]=$!
    for i in $(seq 300); do
        curl -fsS -m 2 -o /dev/null "$url/readyz" 2>/dev/null && break
        kill -0 "${wxfed_pid[$name]}" 2>/dev/null || die "wxfed $name exited (see its log)"
        [ "$i" -eq 300 ] && die "wxfed $name not ready after 30s"
        sleep 0.1
    done
    log "wxfed $name ready (pid ${wxfed_pid[$name]})"
}
# One after the other: the first creates the schema and the signing keys.
start_wxfed a
start_wxfed b

for user in alice bob; do
    echo "$PASSWORD" | "$bin" user add "$user" --password-stdin >/dev/null 2>"$tmp/user-add.err" ||
        { cat "$tmp/user-add.err"; die "wxfed user add $user failed"; }
done
REDIRECT_URI="http://127.0.0.1:9/callback"
"$bin" --json client add cluster-smoke --redirect-uri "$REDIRECT_URI" --first-party \
    >"$tmp/client.json" 2>"$tmp/client-add.err" ||
    { cat "$tmp/client.json" "$tmp/client-add.err"; die "wxfed client add failed"; }
read -r CLIENT_ID CLUSTER_CLIENT_SECRET < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
print(c["client_id"], c["client_secret"])
' "$tmp/client.json") || die "no client_id/client_secret in client add --json"
export CLUSTER_CLIENT_SECRET

# --- nginx -----------------------------------------------------------------
# Its own prefix, config, pid, logs and temp paths; the site config is the
# template docker-compose.yml uses too.
mkdir -p "$tmp/nginx"
sed -e "s/\${UPSTREAM_A}/127.0.0.1:$PORT_A/" -e "s/\${UPSTREAM_B}/127.0.0.1:$PORT_B/" \
    -e "s/\${LISTEN_PORT}/127.0.0.1:$LB_PORT/" "$repo/deploy/nginx-wxfed.conf.template" >"$tmp/nginx/wxfed.conf"
cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log $tmp/nginx/access.log;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    include $tmp/nginx/wxfed.conf;
}
EOF
nginx_args=(-p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log")
"$nginx" "${nginx_args[@]}" -t >"$tmp/nginx/test.log" 2>&1 || { cat "$tmp/nginx/test.log"; die "nginx -t failed"; }
"$nginx" "${nginx_args[@]}" &
nginx_pid=$!
for i in $(seq 100); do
    curl -fsS -m 2 -o /dev/null "$LB/healthz" 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx exited (see its error log)"
    [ "$i" -eq 100 ] && die "nginx not answering after 10s"
    sleep 0.1
done
log "nginx ready at $LB (pid $nginx_pid)"

# --- the smoke test --------------------------------------------------------
python3 "$here/cluster-smoke.py" --lb "$LB" --a "http://127.0.0.1:$PORT_A" --b "http://127.0.0.1:$PORT_B" \
    --client-id "$CLIENT_ID" --redirect-uri "$REDIRECT_URI" --username alice --throttle-username bob \
    --password "$PASSWORD" --wxfed "$bin" --reload-secs "$RELOAD_SECS" --max-failures "$MAX_FAILURES"

if [ "${CLUSTER_HOLD:-0}" = 1 ]; then
    kill "$watchdog_pid" 2>/dev/null && wait "$watchdog_pid" 2>/dev/null
    watchdog_pid=""
    log "holding: $LB (users alice, bob; password '$PASSWORD'); Ctrl-C stops everything"
    wait "$nginx_pid"
fi
