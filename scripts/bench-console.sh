#!/usr/bin/env bash
# Admin console at scale (issue 8): fills 1,000,000 accounts, then times the
# account list and search pages over HTTP (the real handler, queries and
# template) on SQLite and on PostgreSQL. Target: < 50 ms per page.
#
#   scripts/bench-console.sh            # both backends
#   BENCH_ACCOUNTS=100000 scripts/bench-console.sh
#
# PostgreSQL: BENCH_POSTGRES_URL names an admin URL (default
# postgres://postgres@127.0.0.1:5432/postgres); a fresh database is created
# there and dropped at the end. Set it to "" to skip PostgreSQL.
# Accounts are inserted by SQL in the database itself (generate_series on
# PostgreSQL, a recursive CTE on SQLite, in transactions of 100k rows):
# minutes of per-row HTTP or diesel calls buy nothing here.
set -euo pipefail
cd "$(dirname "$0")/.."

accounts=${BENCH_ACCOUNTS:-1000000}
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

fill_sql() {  # $1: first row number, $2: last; prints one INSERT … SELECT
    local series=$3
    cat <<SQL
INSERT INTO accounts (id, username, username_key, display_name, email, email_verified, phone, phone_verified, status, created_at, updated_at)
SELECT 'bench-' || n, 'user' || n, 'user' || n, 'Name ' || n, 'user' || n || '@example.com', FALSE,
       '+86138' || substr('00000000' || n, -8, 8), FALSE, 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00'
FROM $series;
SQL
}

run_backend() {  # $1: name, $2: database URL, $3: how to run SQL
    local name=$1
    export WXFED_DATABASE_URL=$2
    "$wxfed" migrate >/dev/null
    echo "== $name: filling $accounts accounts"
    local start=$SECONDS step=100000 from=1
    while [ "$from" -le "$accounts" ]; do
        local to=$((from + step - 1)); [ "$to" -gt "$accounts" ] && to=$accounts
        if [ "$name" = PostgreSQL ]; then
            fill_sql "$from" "$to" "generate_series($from, $to) AS g(n)" | psql -q "$2" -v ON_ERROR_STOP=1
        else
            { echo "BEGIN;"; fill_sql "$from" "$to" "(WITH RECURSIVE s(n) AS (SELECT $from UNION ALL SELECT n + 1 FROM s WHERE n < $to) SELECT n FROM s)"; echo "COMMIT;"; } | sqlite3 "${2#sqlite://}"
        fi
        from=$((to + 1))
    done
    if [ "$name" = PostgreSQL ]; then psql -q "$2" -c "ANALYZE"; else sqlite3 "${2#sqlite://}" "ANALYZE"; fi
    echo "   filled in $((SECONDS - start)) s"
    printf 'correct horse battery\n' | "$wxfed" user add benchadmin --role admin --password-stdin >/dev/null
    start_server
    sign_in benchadmin "correct horse battery"
    echo "== $name: page times (debug build, 50 rows per page, over HTTP)"
    time_page "home (counts, recent actions, chain)" "/admin"
    time_page "list, first page" "/admin/accounts"
    time_page "list, deep page (after=user777777)" "/admin/accounts?after=user777777"
    time_page "search username prefix (q=user12345)" "/admin/accounts?q=user12345"
    time_page "search broad prefix (q=user9)" "/admin/accounts?q=user9"
    time_page "search name prefix (q=Name 4242)" "/admin/accounts?q=Name%204242"
    time_page "search exact email" "/admin/accounts?q=user500000%40example.com"
    time_page "search exact phone" "/admin/accounts?q=%2B8613800500000"
    time_page "search unknown id (UnionID/OpenID path)" "/admin/accounts?q=oUnionNobody0000"
    time_page "filter role=admin" "/admin/accounts?role=admin"
    time_page "filter status=disabled (none)" "/admin/accounts?status=disabled"
    stop_server
}

run_backend SQLite "sqlite://$work/bench.db"
if [ -n "$postgres_url" ]; then
    pg_db="wxfed_bench_console_$$"
    psql -q "$postgres_url" -c "CREATE DATABASE $pg_db"
    run_backend PostgreSQL "$(database_url "$postgres_url" "$pg_db")"
fi
