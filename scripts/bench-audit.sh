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
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
cleanup() {
    stop_server
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
    start_server
    sign_in benchaud "correct horse battery"
    local mid=$((events / 2)) day
    day=$(date -u -d "@$((start_epoch + days / 2 * 86400))" +%Y-%m-%d)
    echo "== $name: log viewer over $events events (debug build, 50 rows per page, over HTTP)"
    time_page "newest page" "/audit" 10
    time_page "deep page (after=$mid)" "/audit?after=$mid" 10
    time_page "category=admin" "/audit?category=admin" 10
    time_page "action=login.* (a family)" "/audit?action=login.*" 10
    time_page "outcome=failure" "/audit?outcome=failure" 10
    time_page "account=acct-4242" "/audit?account=acct-4242" 10
    time_page "client=client-7" "/audit?client=client-7" 10
    time_page "ip=10.3.17.99 (one address)" "/audit?ip=10.3.17.99" 10
    time_page "ip=10.3.0.0/16 (a network)" "/audit?ip=10.3.0.0%2F16" 10
    time_page "request_id=req-$mid" "/audit?request_id=req-$mid" 10
    time_page "one day (from=to=$day)" "/audit?from=$day&to=$day" 10
    time_page "one day + category=admin + outcome=failure" "/audit?from=$day&to=$day&category=admin&outcome=failure" 10
    time_page "q=ticket 4242 (free text, no index)" "/audit?q=ticket%204242" 10
    time_page "event page (seq $mid)" "/audit/events/$mid" 10
    time_page "failed sign-in report (last 7 days)" "/audit/reports/failed-logins" 10
    stop_server
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
    run_backend PostgreSQL "$(database_url "$postgres_url" "$pg_db")"
fi
