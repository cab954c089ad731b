# Helpers shared by the shell test harnesses (tests/e2e, tests/sdk).
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
