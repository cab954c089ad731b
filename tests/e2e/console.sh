#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
# Browser tests of the admin and auditor console (issues 8 and 9): Debian's
# chromium, driven by playwright-core, uses the console of a real wxfed
# (SQLite in a temp dir) once in zh-CN and once in en.
#
#   bash tests/e2e/install.sh                 # once
#   bash tests/e2e/console.sh [path/to/wxfed]
#
# Every tests/e2e/console/*.mjs (but lib.mjs) is one script; each runs once
# per language against the same server, with these variables:
#   BASE_URL, CONSOLE_BIN (the CLI, with the server's settings exported),
#   ADMIN_USER / AUDITOR_USER and PASSWORD, CONSOLE_LANG (zh-CN | en),
#   SHOTS (a folder for its screenshots), WORK (a scratch folder).
# Screenshots go to $E2E_ARTIFACTS/console (default tests/e2e/screenshots/console).
# The last line is always `console: N passed, M failed`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$repo/target}/debug/wxfed}"
HARNESS=console
# shellcheck source=tests/support/harness.sh
source "$here/../support/harness.sh"

passed=0
failed=0
setup_error=""
wxfed_pid=""
tmp=""

cleanup() {
    local rc=$?
    set +e
    if [ -n "$wxfed_pid" ] && kill -0 "$wxfed_pid" 2>/dev/null; then
        kill "$wxfed_pid"
        for _ in $(seq 50); do kill -0 "$wxfed_pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$wxfed_pid" 2>/dev/null && kill -9 "$wxfed_pid"
        wait "$wxfed_pid" 2>/dev/null
    fi
    [ "$rc" -eq 130 ] && echo "console: interrupted"
    if [ "$rc" -ne 0 ] || [ "$failed" -gt 0 ] || [ -n "$setup_error" ]; then
        [ "$rc" -eq 0 ] && rc=1
        [ -n "$tmp" ] && print_tail "wxfed log" "$tmp/wxfed.log" && echo "console: kept $tmp"
    elif [ -n "$tmp" ]; then
        rm -rf "$tmp"
    fi
    echo "console: $passed passed, $failed failed"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$bin" ] || die "no wxfed binary at $bin (build it, or pass its path as \$1)"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing; run tests/e2e/install.sh"
[ -d "$here/node_modules/playwright-core" ] || die "playwright-core missing; run tests/e2e/install.sh"

# Only the settings this harness gives (tests/support/harness.sh).
clear_wxfed_settings

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wxfed-console.XXXXXX")"
shots_root="${E2E_ARTIFACTS:+$E2E_ARTIFACTS/console}"
shots_root="${shots_root:-$here/screenshots/console}"
# Only this run's screenshots (a stale failure shot would mislead).
rm -rf "$shots_root"
mkdir -p "$shots_root"

port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
export BASE_URL="http://127.0.0.1:$port"
export WXFED_BIND="127.0.0.1:$port" WXFED_ISSUER="$BASE_URL" WXFED_DATA_DIR="$tmp/data"
export WXFED_DEFAULT_LOCALE=zh-CN
export CONSOLE_BIN="$bin" ADMIN_USER=admin AUDITOR_USER=auditor PASSWORD='console e2e password'

"$bin" serve >"$tmp/wxfed.log" 2>&1 &
wxfed_pid=$!
for i in $(seq 300); do
    curl -fsS -o /dev/null "$BASE_URL/readyz" 2>/dev/null && break
    kill -0 "$wxfed_pid" 2>/dev/null || die "wxfed serve exited (see its log)"
    [ "$i" -eq 300 ] && die "wxfed not ready after 30s"
    sleep 0.1
done
log "wxfed ready at $BASE_URL (pid $wxfed_pid)"

add_user() { # username role [more args]
    local name=$1 role=$2
    shift 2
    echo "$PASSWORD" | "$bin" user add "$name" --role "$role" --password-stdin "$@" >>"$tmp/seed.log" 2>&1 ||
        { cat "$tmp/seed.log"; die "wxfed user add $name failed"; }
}
add_user "$ADMIN_USER" admin --name "管理员 Admin"
add_user "$AUDITOR_USER" auditor --name "审计员 Auditor"
for i in 1 2 3; do
    "$bin" user add "user$i" --name "张三$i" --email "user$i@example.com" --phone "+861380013800$i" \
        >>"$tmp/seed.log" 2>&1 || { cat "$tmp/seed.log"; die "seeding user$i failed"; }
done

scripts=()
for f in "$here"/console/*.mjs; do
    [ "$(basename "$f")" = lib.mjs ] && continue
    [ -n "${CONSOLE_ONLY:-}" ] && [[ "$(basename "$f" .mjs)" != $CONSOLE_ONLY ]] && continue
    scripts+=("$f")
done
[ ${#scripts[@]} -gt 0 ] || die "no console scripts"

for lang in zh-CN en; do
    for script in "${scripts[@]}"; do
        name="$(basename "$script" .mjs)"
        export CONSOLE_LANG="$lang" SHOTS="$shots_root/$lang" WORK="$tmp/work-$name-$lang"
        mkdir -p "$SHOTS" "$WORK"
        if (cd "$here" && timeout 300 node "$script") >"$tmp/$name-$lang.log" 2>&1; then
            passed=$((passed + 1))
            log "ok   $name ($lang)"
        else
            failed=$((failed + 1))
            log "FAIL $name ($lang)"
            sed 's/^/    /' "$tmp/$name-$lang.log" | tail -n 40
        fi
    done
done
log "screenshots in $shots_root"
