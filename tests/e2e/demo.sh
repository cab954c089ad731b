#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
# Browser test of `wxfed demo` (issue 12 §1): the real binary on a free
# port, Debian's chromium driven by playwright-core presses every button
# of /demo and checks that each reaches its success page; then Ctrl-C
# (SIGINT) must remove everything the demo made.
#
#   bash tests/e2e/install.sh                 # once
#   bash tests/e2e/demo.sh [path/to/wxfed]
#
# Screenshots go to $E2E_ARTIFACTS/demo (default tests/e2e/screenshots/demo).
# The last line is always `demo: N passed, M failed`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$repo/target}/debug/wxfed}"
HARNESS=demo
# shellcheck source=tests/support/harness.sh
source "$here/../support/harness.sh"

passed=0
failed=0
setup_error=""
demo_pid=""
tmp=""

stop_demo() {
    [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null || return 0
    kill -INT "$demo_pid"
    for _ in $(seq 100); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$demo_pid" 2>/dev/null && kill -9 "$demo_pid"
    wait "$demo_pid" 2>/dev/null || true
    demo_pid=""
}

cleanup() {
    local rc=$?
    set +e
    stop_demo
    [ "$rc" -eq 130 ] && echo "demo: interrupted"
    if [ "$rc" -ne 0 ] || [ "$failed" -gt 0 ] || [ -n "$setup_error" ]; then
        [ "$rc" -eq 0 ] && rc=1
        [ -n "$tmp" ] && print_tail "wxfed demo output" "$tmp/demo.log" && echo "demo: kept $tmp"
    elif [ -n "$tmp" ]; then
        rm -rf "$tmp"
    fi
    echo "demo: $passed passed, $failed failed"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$bin" ] || die "no wxfed binary at $bin (build it, or pass its path as \$1)"
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing; run tests/e2e/install.sh"
[ -d "$here/node_modules/playwright-core" ] || die "playwright-core missing; run tests/e2e/install.sh"

# "No setup": nothing of the caller's wxfed settings reaches the demo.
for v in $(compgen -e); do
    case "$v" in WXFED_*) unset "$v" ;; esac
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wxfed-demo-e2e.XXXXXX")"
shots="${E2E_ARTIFACTS:+$E2E_ARTIFACTS/demo}"
shots="${shots:-$here/screenshots/demo}"
rm -rf "$shots"
mkdir -p "$shots"

port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
export BASE_URL="http://127.0.0.1:$port" SHOTS="$shots"
# TMPDIR: the demo's own directory lands in $tmp, so the test can see it go.
TMPDIR="$tmp" "$bin" demo --bind "127.0.0.1:$port" --lang en >"$tmp/demo.log" 2>&1 &
demo_pid=$!
for i in $(seq 300); do
    curl -fsS -o /dev/null "$BASE_URL/demo" 2>/dev/null && break
    kill -0 "$demo_pid" 2>/dev/null || die "wxfed demo exited (see its output)"
    [ "$i" -eq 300 ] && die "wxfed demo not ready after 30s"
    sleep 0.1
done
log "wxfed demo ready at $BASE_URL (pid $demo_pid)"
grep -q "walk-through: *$BASE_URL/demo" "$tmp/demo.log" || die "the demo did not print its URL"
# The passwords as printed: `    NAME  password PASSWORD  ROLE`.
password_of() { awk -v u="$1" '$1 == u && $2 == "password" { print $3 }' "$tmp/demo.log"; }
export DEMO_PASSWORD="$(password_of demo)" ADMIN_PASSWORD="$(password_of admin)" AUDITOR_PASSWORD="$(password_of auditor)"
[ -n "$DEMO_PASSWORD" ] && [ -n "$ADMIN_PASSWORD" ] && [ -n "$AUDITOR_PASSWORD" ] || die "the demo did not print the passwords"
demo_dir="$(awk '$1 == "data:" { print $2 }' "$tmp/demo.log")"
[ -d "$demo_dir" ] || die "the demo's directory $demo_dir does not exist"

if (cd "$here" && timeout 300 node demo.mjs) >"$tmp/browser.log" 2>&1; then
    passed=$((passed + 1))
    log "ok   every button of /demo"
else
    failed=$((failed + 1))
    log "FAIL browser"
fi
sed 's/^/    /' "$tmp/browser.log" | tail -n 60

# Ctrl-C removes everything the demo made.
stop_demo
if [ ! -e "$demo_dir" ] && grep -q "wxfed demo stopped; removed" "$tmp/demo.log"; then
    passed=$((passed + 1))
    log "ok   Ctrl-C removed $demo_dir"
else
    failed=$((failed + 1))
    log "FAIL $demo_dir still exists after Ctrl-C"
fi
log "screenshots in $shots"
