# Helpers shared by the shell test harnesses (tests/e2e, tests/sdk, tests/fault, scripts/cluster.sh).
# Source it after setting HARNESS, the prefix of every line they print.
# shellcheck shell=bash

log() { echo "$HARNESS: $*"; }

# Fail the setup: everything not yet checked counts as failed (the
# harness's EXIT trap reads setup_error).
die() {
    # shellcheck disable=SC2034
    setup_error="$*"
    echo "$HARNESS: SETUP FAILED: $*"
    exit 1
}

print_tail() { # title file
    [ -f "$2" ] || return 0
    echo "----- $1 (last 60 lines of $2) -----"
    tail -n 60 "$2"
    echo "----- end of $1 -----"
}

# Only the settings the harness gives: every WXFED_* variable of the
# caller is unset (a stray WXFED_DATABASE_URL would point a test at a
# real database), but the log format and level.
clear_wxfed_settings() {
    local v
    for v in $(compgen -e); do
        case "$v" in
            WXFED_LOG_LEVEL | WXFED_LOG_FORMAT) ;;
            WXFED_*) unset "$v" ;;
        esac
    done
}

# Bounds the whole run: after $1 seconds the harness gets SIGTERM, so its
# EXIT trap cleans up. Sets watchdog_pid (the EXIT trap kills it; its
# sleep ends with it, so nothing outlives the run).
start_watchdog() { # seconds
    (
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        sleep "$1" &
        sleeper=$!
        wait "$sleeper" || exit 0
        echo "$HARNESS: deadline of ${1}s reached"
        kill -TERM $$
    ) &
    watchdog_pid=$!
}
