# Shared by the console benchmarks (scripts/bench-console.sh,
# scripts/bench-audit.sh): a served wxfed, a signed-in browser session and
# page timings over HTTP. Source it after setting $wxfed and $work.
# Harness variables start with BENCH_, never WXFED_: wxfed refuses
# unknown WXFED_* variables in its environment.

server_pid=

# Starts `wxfed serve` on a free loopback port; sets $port and $server_pid.
start_server() {
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    WXFED_BIND=127.0.0.1:$port WXFED_ISSUER=http://127.0.0.1:$port "$wxfed" serve >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# Signs $1 in with password $2; the session lives in $work/cookies.
sign_in() {
    rm -f "$work/cookies"
    local token
    token=$(curl -s -c "$work/cookies" -b "$work/cookies" "http://127.0.0.1:$port/login" |
        sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n 1)
    curl -s -o /dev/null -c "$work/cookies" -b "$work/cookies" --data-urlencode "csrf_token=$token" \
        --data-urlencode "username=$1" --data-urlencode "password=$2" "http://127.0.0.1:$port/login"
}

# $1: label, $2: path, $3: requests (default 20): best and median.
time_page() {
    local times=() n=${3:-20}
    for _ in $(seq "$n"); do
        times+=("$(curl -s -o /dev/null -b "$work/cookies" -w '%{time_total}' "http://127.0.0.1:$port$2")")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk -v label="$1" '{ t[NR] = $1 } END { printf "  %-52s best %7.1f ms   median %7.1f ms\n", label, t[1] * 1000, t[int((NR + 1) / 2)] * 1000 }'
}

# The URL of database $2 on the server of admin URL $1.
database_url() {
    python3 -c "import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p._replace(path='/' + sys.argv[2]).geturl())" "$1" "$2"
}
