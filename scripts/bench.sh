#!/usr/bin/env bash
# Runs wxfed's benchmarks on this machine: raw signing, then the scenarios of
# issue 11's table over HTTP, on SQLite and on PostgreSQL: discovery, JWKS,
# client_credentials with RS256 / ES256 / EdDSA access tokens, the
# authorization code round trip of a logged-in browser (RS256 and ES256
# clients) and introspection. Each rate is printed with its ratio to the
# one-core cost of the signatures it needs (`cargo bench` builds with the
# optimized bench profile; the tests never run this).
#
#   scripts/bench.sh
#
# PostgreSQL: WXFED_BENCH_POSTGRES_URL names an admin URL (default
# postgres://postgres@127.0.0.1:5432/postgres); the benchmark creates a fresh
# database there and drops it at the end. Set it to "" (empty) to skip the
# PostgreSQL run. Knobs of the token benchmark (see benches/token_endpoint.rs):
# WXFED_BENCH_CONCURRENCY, WXFED_BENCH_REQUESTS, WXFED_BENCH_ROUND_TRIPS,
# WXFED_BENCH_GETS (discovery/JWKS requests; half as many introspections),
# WXFED_BENCH_POOL_SIZE. For the side-by-side with node-oidc-provider (pinned
# cores, medians of repeated runs) use ../shared/perf; see its README.
set -euo pipefail

cd "$(dirname "$0")/.."

postgres_url=${WXFED_BENCH_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/postgres}
unset WXFED_BENCH_POSTGRES_URL

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "== wxfed benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
echo "== machine: $(nproc) cores (nproc), CPU: ${cpu:-unknown}, $(uname -sr)"
echo "== $(rustc --version)"
echo "== the server and the load generator run on the same cores"
echo

# Build first, so that compile time is not mixed into the runs below.
cargo bench --no-run --bench signing --bench token_endpoint

echo
echo "== signing (cargo bench --bench signing)"
cargo bench --bench signing

echo
echo "== token endpoint on SQLite (cargo bench --bench token_endpoint)"
cargo bench --bench token_endpoint

if [ -n "$postgres_url" ]; then
    echo
    # Shown without a password.
    shown=$(printf '%s' "$postgres_url" | sed 's#://\([^:/@]*\):[^@]*@#://\1:***@#')
    echo "== token endpoint on PostgreSQL (WXFED_BENCH_POSTGRES_URL=$shown cargo bench --bench token_endpoint)"
    WXFED_BENCH_POSTGRES_URL=$postgres_url cargo bench --bench token_endpoint
fi
