#!/usr/bin/env bash
# The auditor's console at scale (issue 9): fills 10,000,000 audit events,
# then times the log viewer's pages over HTTP (the real handler, queries
# and template) with each filter, and an export of 1,000,000 rows (CSV and
# self-verifying JSON Lines) with its time and peak memory, on SQLite and
# on PostgreSQL. Target: < 100 ms per page; export at constant memory.
#
#   scripts/bench-audit.sh                     # both backends, 10 M events
#   BENCH_EVENTS=1000000 scripts/bench-audit.sh
#
# PostgreSQL: BENCH_POSTGRES_URL names an admin URL (default
# postgres://postgres@127.0.0.1:5432/postgres); a fresh database is created
# there and dropped at the end. Set it to "" to skip PostgreSQL, and
# BENCH_SQLITE=0 to skip SQLite.
# Events are inserted by SQL in the database itself (generate_series on
# PostgreSQL, a recursive CTE on SQLite, 500k rows per transaction), with
# made-up hashes: the viewer and the export do not check them (`audit
# verify` would report the first one). 100,000 events per day over
# BENCH_EVENTS / 100,000 days, ending yesterday.
set -euo pipefail
cd "$(dirname "$0")/.."

events=${BENCH_EVENTS:-10000000}
postgres_url=${BENCH_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/postgres}
target=${CARGO_TARGET_DIR:-target}
cargo build --all-targets --quiet
wxfed="$target/debug/wxfed"
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    if [ -n "${pg_db:-}" ]; then psql -q "$postgres_url" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

export WXFED_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export WXFED_DATA_DIR="$work/data" WXFED_LOG_LEVEL=warn
days=$(( (events + 99999) / 100000 ))
# Row n occurred at start + n * 0.864 s: 100,000 a day.
start_epoch=$(( $(date -u +%s) / 86400 * 86400 - days * 86400 ))

fill_sql() {  # $1: the row source (n), $2: SQL for "seconds → timestamp", $3: SQL for 64 hex chars from n
    local series=$1 ts=$2 hash=$3
    cat <<SQL
INSERT INTO audit_events (seq, id, occurred_at, category, action, outcome, reason, actor, account_id, client_id, ip,
                          user_agent, request_id, detail, prev_hash, hash, link_version, content_salt, content_hash)
SELECT n, 'bench-' || n, $ts,
       CASE n % 10 WHEN 0 THEN 'admin' WHEN 1 THEN 'audit_access' WHEN 2 THEN 'wechat' WHEN 3 THEN 'authentication' WHEN 4 THEN 'authentication' ELSE 'oidc' END,
       CASE n % 10 WHEN 0 THEN 'user.role_added' WHEN 1 THEN 'audit.searched' WHEN 2 THEN 'wechat_identity.created'
                   WHEN 3 THEN 'login.password' WHEN 4 THEN 'login.wechat' ELSE 'oidc.token_issued' END,
       CASE WHEN n % 17 = 3 THEN 'failure' ELSE 'success' END,
       CASE WHEN n % 10 = 0 THEN 'ticket ' || (n % 5000) ELSE NULL END,
       CASE WHEN n % 10 = 0 THEN 'account:admin-' || (n % 7) ELSE NULL END,
       'acct-' || (n % 200000), 'client-' || (n % 40),
       '10.' || (n % 7) || '.' || (n / 7 % 256) || '.' || (n % 250 + 1),
       'Mozilla/5.0 bench', 'req-' || n, '{}', $hash, $hash, 2, 'salt', $hash
FROM $series;
SQL
}

time_page() {  # $1: label, $2: path; best and median of 10 requests
    local times=()
    for _ in $(seq 10); do
        times+=("$(curl -s -o /dev/null -b "$work/cookies" -w '%{time_total}' "http://127.0.0.1:$port$2")")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk -v label="$1" '{ t[NR] = $1 } END { printf "  %-52s best %7.1f ms   median %7.1f ms\n", label, t[1] * 1000, t[int((NR + 1) / 2)] * 1000 }'
}

export_run() {  # $1: label, $2…: export arguments
    local label=$1; shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$wxfed" audit export "$@" --output "$work/export.out" 2>/dev/null
    read -r secs kb <"$work/time"
    local rows size
    rows=$(wc -l <"$work/export.out"); size=$(du -m "$work/export.out" | cut -f1)
    printf '  %-52s %6.1f s   peak RSS %5d MB   %8d lines, %5d MB\n' "$label" "$secs" $((kb / 1024)) "$rows" "$size"
}

run_backend() {  # $1: name, $2: database URL
    local name=$1
    export WXFED_DATABASE_URL=$2
    "$wxfed" migrate >/dev/null
    echo "== $name: filling $events audit events"
    local start=$SECONDS step=500000 from=1
    while [ "$from" -le "$events" ]; do
        local to=$((from + step - 1)); [ "$to" -gt "$events" ] && to=$events
        if [ "$name" = PostgreSQL ]; then
            fill_sql "generate_series($from, $to) AS g(n)" "to_timestamp($start_epoch + n * 0.864) AT TIME ZONE 'UTC'" \
                "md5(n::text) || md5((n + 1)::text)" | psql -q "$2" -v ON_ERROR_STOP=1
        else
            { echo "BEGIN;"; fill_sql "(WITH RECURSIVE s(n) AS (SELECT $from UNION ALL SELECT n + 1 FROM s WHERE n < $to) SELECT n FROM s)" \
                "strftime('%Y-%m-%d %H:%M:%f', $start_epoch + n * 0.864, 'unixepoch')" \
                "printf('%064x', n)"; echo "COMMIT;"; } | sqlite3 "${2#sqlite://}"
        fi
        from=$((to + 1))
    done
    # A checkpoint row at the end of every day (made-up signatures: the
    # export reads them, it does not check them), so that a JSON Lines
    # export starts its proof where a real installation's would, within a
    # minute of its range, instead of at row 1.
    local day_seq
    for day_seq in $(seq 100000 100000 "$events"); do
        echo "INSERT INTO audit_checkpoints (seq, head_hash, signed_at, prev_checkpoint_hash, key_id, signature)
              SELECT seq, hash, occurred_at, NULL, 'bench', 'bench' FROM audit_events WHERE seq = $day_seq;"
    done >"$work/checkpoints.sql"
    if [ "$name" = PostgreSQL ]; then psql -q "$2" -v ON_ERROR_STOP=1 -f "$work/checkpoints.sql"; else sqlite3 "${2#sqlite://}" <"$work/checkpoints.sql"; fi
    local head_sql="UPDATE audit_chain_head SET last_seq = $events, last_hash = (SELECT hash FROM audit_events WHERE seq = $events)"
    if [ "$name" = PostgreSQL ]; then
        psql -q "$2" -c "$head_sql" -c "ANALYZE"
    else
        sqlite3 "${2#sqlite://}" "$head_sql; ANALYZE;"
    fi
    echo "   filled in $((SECONDS - start)) s"
    printf 'correct horse battery\n' | "$wxfed" user add benchaud --role auditor --password-stdin >/dev/null
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    WXFED_BIND=127.0.0.1:$port WXFED_ISSUER=http://127.0.0.1:$port "$wxfed" serve >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
    rm -f "$work/cookies"
    local token
    token=$(curl -s -c "$work/cookies" -b "$work/cookies" "http://127.0.0.1:$port/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n 1)
    curl -s -o /dev/null -c "$work/cookies" -b "$work/cookies" --data-urlencode "csrf_token=$token" \
        --data-urlencode username=benchaud --data-urlencode "password=correct horse battery" "http://127.0.0.1:$port/login"
    local mid=$((events / 2)) day
    day=$(date -u -d "@$((start_epoch + days / 2 * 86400))" +%Y-%m-%d)
    echo "== $name: log viewer over $events events (debug build, 50 rows per page, over HTTP)"
    time_page "newest page" "/audit"
    time_page "deep page (after=$mid)" "/audit?after=$mid"
    time_page "category=admin" "/audit?category=admin"
    time_page "action=login.* (a family)" "/audit?action=login.*"
    time_page "outcome=failure" "/audit?outcome=failure"
    time_page "account=acct-4242" "/audit?account=acct-4242"
    time_page "client=client-7" "/audit?client=client-7"
    time_page "ip=10.3.17.99 (one address)" "/audit?ip=10.3.17.99"
    time_page "ip=10.3.0.0/16 (a network)" "/audit?ip=10.3.0.0%2F16"
    time_page "request_id=req-$mid" "/audit?request_id=req-$mid"
    time_page "one day (from=to=$day)" "/audit?from=$day&to=$day"
    time_page "one day + category=admin + outcome=failure" "/audit?from=$day&to=$day&category=admin&outcome=failure"
    time_page "q=ticket 4242 (free text, no index)" "/audit?q=ticket%204242"
    time_page "event page (seq $mid)" "/audit/events/$mid"
    time_page "failed sign-in report (last 7 days)" "/audit/reports/failed-logins"
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    local from_day
    from_day=$(date -u -d "@$((start_epoch + (days - 10) * 86400))" +%Y-%m-%d)
    echo "== $name: export of the last 10 days (1,000,000 events at 10 M) with the CLI"
    export_run "CSV --from $from_day" --from "$from_day" --format csv
    export_run "JSON Lines (self-verifying) --from $from_day" --from "$from_day" --format jsonl
}

# BENCH_SQLITE=0 skips SQLite.
[ "${BENCH_SQLITE:-1}" = 0 ] || run_backend SQLite "sqlite://$work/bench.db"
if [ -n "$postgres_url" ]; then
    pg_db="wxfed_bench_audit_$$"
    psql -q "$postgres_url" -c "CREATE DATABASE $pg_db"
    run_backend PostgreSQL "$(python3 -c "import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p._replace(path='/' + sys.argv[2]).geturl())" "$postgres_url" "$pg_db")"
fi
