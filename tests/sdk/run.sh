#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup and print_tail run from the EXIT trap
# SDK test: a real WeChat backend SDK (wechatpy, from PyPI) against wxfed's
# jscode2session facade and the FinClip schemes, with the WeChat simulator
# standing in for WeChat.
#
#   bash tests/sdk/install.sh                                # once: venv with wechatpy
#   bash tests/sdk/run.sh [path/to/wxfed] [path/to/wechat-sim]
#
# The binaries default to $CARGO_TARGET_DIR/debug/{wxfed,wechat-sim} (or
# target/debug/…). Everything (seed, databases, logs, an HTTP transcript with
# secrets redacted) lives in a fresh temp dir, removed on success and kept (path
# printed) on failure; SDK_KEEP=1 keeps it after a passing run too.
#
# Three wxfed instances share one SQLite database, as instances behind a load
# balancer would; they differ only in WXFED_WECHAT_UNLINKED: `deny` (the main
# one, all facade and FinClip checks), `bind` and `auto-phone`.
# The last line is always `sdk: N passed, M failed`; the exit status is
# non-zero when anything failed or broke.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
wxfed_bin="${1:-$target/debug/wxfed}"
sim_bin="${2:-$target/debug/wechat-sim}"
venv="${WXFED_SDK_VENV:-$HOME/.cache/wxfed/venv}"
py="$venv/bin/python"
PASSWORD='a long password'

passed=0
failed=0
setup_error=""
tmp=""
pids=()
started=$SECONDS

HARNESS=sdk
# shellcheck source=tests/support/harness.sh
source "$here/../support/harness.sh"

cleanup() {
    local rc=$?
    set +e
    local pid
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        wait "$pid" 2>/dev/null
    done
    # Counts come from the Python script; without them nothing counts as passed.
    if [ -n "$tmp" ] && [ -f "$tmp/results" ]; then
        read -r passed failed <"$tmp/results"
    elif [ "$failed" -eq 0 ]; then
        failed=1
    fi
    [ "$rc" -eq 130 ] && echo "sdk: interrupted"
    if [ "$rc" -ne 0 ] || [ "$failed" -gt 0 ] || [ -n "$setup_error" ]; then
        [ "$rc" -eq 0 ] && rc=1
        if [ -n "$tmp" ]; then
            print_tail "wechat-sim log" "$tmp/sim.log"
            for policy in deny bind auto-phone; do
                print_tail "wxfed ($policy) log" "$tmp/wxfed-$policy.log"
            done
            echo "sdk: HTTP transcript (secrets redacted): $tmp/http.log"
            echo "sdk: kept $tmp for inspection"
        fi
    elif [ -n "$tmp" ] && [ "${SDK_KEEP:-0}" = 1 ]; then
        echo "sdk: kept $tmp (SDK_KEEP=1)"
    elif [ -n "$tmp" ]; then
        rm -rf "$tmp"
    fi
    echo "sdk: took $((SECONDS - started)) s"
    echo "sdk: $passed passed, $failed failed"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- preconditions ---------------------------------------------------------
[ -x "$wxfed_bin" ] || die "no wxfed binary at $wxfed_bin (build it, or pass its path as \$1)"
[ -x "$sim_bin" ] || die "no wechat-sim binary at $sim_bin (build it, or pass its path as \$2)"
wxfed_bin="$(cd "$(dirname "$wxfed_bin")" && pwd)/$(basename "$wxfed_bin")"
sim_bin="$(cd "$(dirname "$sim_bin")" && pwd)/$(basename "$sim_bin")"
if ! { [ -x "$py" ] && "$py" -c 'import wechatpy' 2>/dev/null; }; then
    die "no wechatpy in $venv; run tests/sdk/install.sh"
fi
command -v curl >/dev/null || die "curl missing"

# Only the settings this harness gives (tests/support/harness.sh).
clear_wxfed_settings

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wxfed-sdk.XXXXXX")"

# Four distinct free loopback ports (the kernel picks; closed again at once).
read -r SIM_PORT DENY_PORT BIND_PORT PHONE_PORT < <("$py" -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
') || die "could not pick ports"
SIM="http://127.0.0.1:$SIM_PORT"
log "temp dir $tmp; simulator $SIM; wxfed on ports $DENY_PORT (deny) $BIND_PORT (bind) $PHONE_PORT (auto-phone)"

wait_ready() { # url pid name
    for i in $(seq 300); do
        if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || die "$3 exited (see its log)"
        [ "$i" -eq 300 ] && die "$3 not ready after 30 s"
        sleep 0.1
    done
}

# --- the WeChat simulator ----------------------------------------------------
# Apps: the enterprise's mini-program and mobile app and a second mini-program
# (the WeChat-side auth page of scheme 2) in Open Platform `acme`; a mini-program
# of another company in Open Platform `other`. People: alice (linked by an admin),
# carol (unlinked: deny, then bind), dave (linked by his verified phone number).
cat >"$tmp/apps.json" <<'JSON'
{
  "mp":    {"appid": "wx5f2a3c4b1d0e9f87", "secret": "9c1f4e2a7b3d5c8e0f6a1b2c3d4e5f60", "kind": "miniprogram", "name": "Acme Shop", "open_platform": "acme"},
  "app":   {"appid": "wx7b1e0c2d3a4f5968", "secret": "2b7d9e1f3a5c7e9b1d3f5a7c9e1b3d5f", "kind": "mobile_app", "name": "Acme App", "open_platform": "acme"},
  "auth":  {"appid": "wx3c9d8e7f6a5b4c21", "secret": "7e5c3a1f9d7b5e3c1a9f7d5b3e1c9a7f", "kind": "miniprogram", "name": "Acme Login", "open_platform": "acme"},
  "other": {"appid": "wx9a8b7c6d5e4f3a2b", "secret": "4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c", "kind": "miniprogram", "name": "Other Mall", "open_platform": "other"}
}
JSON
"$py" - "$tmp/apps.json" "$tmp/seed.json" <<'PY' || die "could not write the seed"
import json, sys
apps = json.load(open(sys.argv[1]))
seed = {
    "apps": list(apps.values()),
    "users": [
        {"key": "alice", "nickname": "Alice"},
        {"key": "carol", "nickname": "Carol"},
        {"key": "dave", "nickname": "Dave", "phone": "+8613800138000"},
    ],
}
json.dump(seed, open(sys.argv[2], "w"), indent=2)
PY
"$sim_bin" --bind "127.0.0.1:$SIM_PORT" --seed "$tmp/seed.json" >"$tmp/sim.log" 2>&1 &
pids+=($!)
wait_ready "$SIM/__sim/healthz" "${pids[-1]}" "wechat-sim"
log "wechat-sim ready (pid ${pids[-1]})"

# --- wxfed: data, apps, accounts, clients ----------------------------------
export WXFED_DATA_DIR="$tmp/data" WXFED_WECHAT_API_BASE="$SIM" WXFED_WECHAT_OPEN_BASE="$SIM"
# Every simulated phone here shares 127.0.0.1: the per-network WeChat call
# budget (for public clients) would stand in for a flood of one network.
export WXFED_WECHAT_CALLS_PER_IP_PER_MINUTE=100000
export WXFED_BIND="127.0.0.1:$DENY_PORT" WXFED_ISSUER="http://127.0.0.1:$DENY_PORT"

cli() { # out-file args… : runs wxfed, keeps stdout in out-file, dies on failure
    local out="$1"
    shift
    "$wxfed_bin" "$@" >"$out" 2>"$out.err" || { cat "$out" "$out.err"; die "wxfed $* failed"; }
}

"$wxfed_bin" migrate >"$tmp/migrate.out" 2>&1 || { cat "$tmp/migrate.out"; die "wxfed migrate failed"; }

for key in mp app auth other; do
    read -r kind appid name platform secret < <("$py" -c '
import json, sys
a = json.load(open(sys.argv[1]))[sys.argv[2]]
print(a["kind"].replace("_", "-"), a["appid"], a["name"].replace(" ", "_"), a["open_platform"], a["secret"])
' "$tmp/apps.json" "$key")
    echo "$secret" | cli "$tmp/app-$key.json" wechat-app add --kind "$kind" --appid "$appid" \
        --name "${name//_/ }" --open-platform "$platform" --secret-stdin --json
done
log "registered 4 WeChat apps"

for user in alice bob carol; do
    echo "$PASSWORD" | cli "$tmp/user-$user.json" user add "$user" --password-stdin --json
done
echo "$PASSWORD" | cli "$tmp/user-dave.json" user add dave --phone +8613800138000 --phone-verified \
    --password-stdin --json
log "added accounts alice, bob (never uses WeChat), carol, dave"

# The token-exchange grant's name on the command line (clap spells it in kebab case).
tx_grant="$("$wxfed_bin" client add --help | grep -o -m1 -E '[a-z-]*token-exchange[a-z-]*' | head -n 1 || true)"
appid_of() { "$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["appid"])' "$tmp/apps.json" "$1"; }
client_id() { "$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["client_id"])' "$1"; }

# Clients need the server side of the FinClip work; without it the run goes on
# and the checks that need a client fail (the SDK-against-simulator check still runs).
add_client() { # key args…
    local key="$1"
    shift
    if [ -z "$tx_grant" ]; then
        log "WARNING: wxfed client add --help names no token-exchange grant; client $key not registered"
        return 0
    fi
    if ! "$wxfed_bin" client add "$@" --json >"$tmp/client-$key.json" 2>"$tmp/client-$key.err"; then
        log "WARNING: wxfed client add $* failed: $(cat "$tmp/client-$key.err")"
        rm -f "$tmp/client-$key.json"
    fi
}
# The enterprise's own app (FinClip host): logs people in (browser or WeChat
# SDK) and asks for host codes for the mini-program it hosts (--host-for).
add_client host "Acme host app" --public --first-party --host-app --host-for "$(appid_of mp)" --host-for "$(appid_of other)" \
    --wechat-app "$(appid_of app)" --redirect-uri com.acme.host:/oauth/callback \
    --grant-type authorization-code --grant-type refresh-token --grant-type "${tx_grant:-none}" \
    --scope openid --scope profile --scope phone --scope wechat
host_client=""
[ -f "$tmp/client-host.json" ] && host_client="$(client_id "$tmp/client-host.json")"
# The mini-program's own client: WeChat codes (in WeChat) and the host's
# tokens (scheme 3, inside the host app).
add_client mini "Acme Shop mini-program" --public --wechat-app "$(appid_of mp)" \
    --trust-host "${host_client:-none}" --grant-type "${tx_grant:-none}" \
    --scope openid --scope profile --scope phone --scope wechat
# The same mini-program's backend as a confidential client (HTTP Basic).
add_client backend "Acme Shop backend" --wechat-app "$(appid_of mp)" --grant-type "${tx_grant:-none}" \
    --scope openid --scope wechat
# Another company's mini-program client, which trusts no host.
add_client stranger "Other Mall mini-program" --public --wechat-app "$(appid_of other)" \
    --grant-type "${tx_grant:-none}" --scope openid --scope wechat
registered=""
for key in host mini backend stranger; do [ -f "$tmp/client-$key.json" ] && registered+="$key "; done
log "clients: ${registered:-none }(token exchange grant: ${tx_grant:-none})"

# --- three wxfed instances on the one database -------------------------------
start_wxfed() { # policy port
    WXFED_WECHAT_UNLINKED="$1" WXFED_BIND="127.0.0.1:$2" WXFED_ISSUER="http://127.0.0.1:$DENY_PORT" \
        "$wxfed_bin" serve >"$tmp/wxfed-$1.log" 2>&1 &
    pids+=($!)
    wait_ready "http://127.0.0.1:$2/readyz" "${pids[-1]}" "wxfed serve ($1)"
    log "wxfed ($1) ready on port $2 (pid ${pids[-1]})"
}
start_wxfed deny "$DENY_PORT"
start_wxfed bind "$BIND_PORT"
start_wxfed auto-phone "$PHONE_PORT"

# --- the checks ----------------------------------------------------------------
set +e
SDK_SIM="$SIM" SDK_TMP="$tmp" SDK_WXFED_BIN="$wxfed_bin" SDK_PASSWORD="$PASSWORD" \
    SDK_DENY="http://127.0.0.1:$DENY_PORT" SDK_BIND="http://127.0.0.1:$BIND_PORT" \
    SDK_PHONE="http://127.0.0.1:$PHONE_PORT" SDK_RESULTS="$tmp/results" SDK_HTTP_LOG="$tmp/http.log" \
    "$py" "$here/wechatpy_facade.py"
py_rc=$?
set -e
[ -f "$tmp/results" ] || die "wechatpy_facade.py crashed (exit $py_rc) before reporting"
read -r passed failed <"$tmp/results"
[ "$failed" -eq 0 ] || exit 1
[ "$py_rc" -eq 0 ] || die "wechatpy_facade.py exited $py_rc"
exit 0
