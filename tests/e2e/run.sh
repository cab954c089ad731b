#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup and print_tail run from the EXIT trap
# End-to-end test: Apache httpd + mod_auth_openidc (a relying party nobody here
# wrote) protects a page; Debian's chromium, driven by playwright-core, logs in
# through wxfed, reads the claims, and logs out of both.
#
#   bash tests/e2e/install.sh            # once: apache2, mod_auth_openidc, chromium, playwright-core
#   bash tests/e2e/run.sh [path/to/wxfed]
#
# The binary defaults to $CARGO_TARGET_DIR/debug/wxfed (or target/debug/wxfed).
# Everything (database, Apache config, logs) lives in a fresh temp dir; it is
# removed on success and kept (path printed) on failure. Screenshots of failed
# checks go to $E2E_ARTIFACTS if set (logs are copied there too), else the temp dir.
# E2E_KEEP=1 keeps the temp dir after a passing run too.
# The last line is always `e2e: N passed, M failed`; the exit status is non-zero
# when anything failed or broke.
#
# The whole run is repeated for a client of each signing algorithm (its ID and
# access tokens): E2E_ALGS, default "RS256 ES256". EdDSA is left out by default:
# Debian 12's libcjose0 0.6.2.1 and mod_auth_openidc 2.4.12 know no EdDSA/OKP
# keys (E2E_ALGS="RS256 ES256 EdDSA" tries it with a newer build). E2E_ALG=X
# runs one algorithm only (what each repetition is).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CHECKS=5 # a–e in mod_auth_openidc.mjs

if [ -z "${E2E_ALG:-}" ]; then
    total_passed=0
    total_failed=0
    status=0
    for alg in ${E2E_ALGS:-RS256 ES256}; do
        echo "== e2e: a client with $alg ID and access tokens"
        out="$(mktemp)"
        E2E_ALG=$alg bash "${BASH_SOURCE[0]}" "$@" 2>&1 | tee "$out" || status=1
        last="$(tail -n 1 "$out")"
        rm -f "$out"
        if [[ "$last" =~ ^e2e:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
            total_passed=$((total_passed + BASH_REMATCH[1]))
            total_failed=$((total_failed + BASH_REMATCH[2]))
        else
            total_failed=$((total_failed + CHECKS))
            status=1
        fi
    done
    echo "e2e: $total_passed passed, $total_failed failed"
    exit "$status"
fi
case "$E2E_ALG" in
RS256 | ES256 | EdDSA) ;;
*)
    echo "e2e: E2E_ALG must be RS256, ES256 or EdDSA, not $E2E_ALG" >&2
    echo "e2e: 0 passed, $CHECKS failed"
    exit 1
    ;;
esac

bin="${1:-${CARGO_TARGET_DIR:-$repo/target}/debug/wxfed}"
APACHE2="${APACHE2:-/usr/sbin/apache2}"
MODULES=/usr/lib/apache2/modules
USERNAME=alice
PASSWORD='a long password'

passed=0
failed=0
setup_error=""
wxfed_pid=""
apache_conf=""
tmp=""

HARNESS=e2e
# shellcheck source=tests/support/harness.sh
source "$here/../support/harness.sh"

cleanup() {
    local rc=$?
    set +e
    if [ -n "$apache_conf" ] && [ -f "$tmp/apache/run/httpd.pid" ]; then
        "$APACHE2" -f "$apache_conf" -k stop >/dev/null 2>&1
        for _ in $(seq 50); do [ -f "$tmp/apache/run/httpd.pid" ] || break; sleep 0.1; done
    fi
    if [ -n "$wxfed_pid" ] && kill -0 "$wxfed_pid" 2>/dev/null; then
        kill "$wxfed_pid"
        for _ in $(seq 50); do kill -0 "$wxfed_pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$wxfed_pid" 2>/dev/null && kill -9 "$wxfed_pid"
        wait "$wxfed_pid" 2>/dev/null
    fi
    # Counts come from the browser script; whatever it did not report failed.
    if [ -n "$tmp" ] && [ -f "$tmp/results" ]; then
        read -r passed failed <"$tmp/results"
    else
        failed=$((CHECKS - passed))
    fi
    [ "$rc" -eq 130 ] && echo "e2e: interrupted"
    if [ "$rc" -ne 0 ] || [ "$failed" -gt 0 ] || [ -n "$setup_error" ]; then
        [ "$rc" -eq 0 ] && rc=1
        if [ -n "$tmp" ]; then
            print_tail "wxfed log" "$tmp/wxfed.log"
            if [ -f "$tmp/apache/logs/error.log" ]; then
                echo "----- Apache error log: errors and warnings (last 30) -----"
                grep -E '\[[a-z_]+:(emerg|alert|crit|error|warn)\]' "$tmp/apache/logs/error.log" | tail -n 30
                print_tail "Apache error log" "$tmp/apache/logs/error.log"
                print_tail "Apache access log" "$tmp/apache/logs/access.log"
            fi
            if [ -n "${E2E_ARTIFACTS:-}" ]; then
                mkdir -p "$E2E_ARTIFACTS"
                cp "$tmp/wxfed.log" "$tmp/apache/logs/error.log" "$tmp/apache/logs/access.log" \
                    "$tmp/apache/httpd.conf" "$E2E_ARTIFACTS/" 2>/dev/null
                echo "e2e: logs copied to $E2E_ARTIFACTS"
            fi
            echo "e2e: kept $tmp for inspection"
        fi
    elif [ -n "$tmp" ] && [ "${E2E_KEEP:-0}" = 1 ]; then
        echo "e2e: kept $tmp (E2E_KEEP=1)"
    elif [ -n "$tmp" ]; then
        rm -rf "$tmp"
    fi
    echo "e2e: $passed passed, $failed failed"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- preconditions ---------------------------------------------------------
[ -x "$bin" ] || die "no wxfed binary at $bin (build it, or pass its path as \$1)"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[ -x "$APACHE2" ] || die "$APACHE2 missing; run tests/e2e/install.sh"
[ -f "$MODULES/mod_auth_openidc.so" ] || die "mod_auth_openidc missing; run tests/e2e/install.sh"
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing; run tests/e2e/install.sh"
[ -d "$here/node_modules/playwright-core" ] || die "playwright-core missing; run tests/e2e/install.sh"
command -v curl >/dev/null || die "curl missing"

# Only the settings this harness gives (tests/support/harness.sh).
clear_wxfed_settings

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wxfed-e2e.XXXXXX")"
# Apache's children run as www-data when started as root: they may pass
# through the temp dir (not list it) and read the document root.
chmod 711 "$tmp"
artifacts="${E2E_ARTIFACTS:-$tmp}"
mkdir -p "$artifacts"

# Two free loopback ports (the kernel picks; closed again right away).
read -r OP_PORT RP_PORT < <(node -e '
const net = require("net");
const pick = () => new Promise((ok) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); }); });
(async () => { const a = await pick(); let b; do { b = await pick(); } while (b === a); console.log(a, b); })();
') || die "could not pick ports"
ISSUER="http://127.0.0.1:$OP_PORT"
RP="http://127.0.0.1:$RP_PORT"
log "temp dir $tmp; wxfed $ISSUER; Apache $RP"

export WXFED_BIND="127.0.0.1:$OP_PORT" WXFED_ISSUER="$ISSUER" WXFED_DATA_DIR="$tmp/data"

# --- wxfed -----------------------------------------------------------------
"$bin" serve >"$tmp/wxfed.log" 2>&1 &
wxfed_pid=$!
for i in $(seq 300); do
    if curl -fsS -o /dev/null "$ISSUER/readyz" 2>/dev/null; then break; fi
    kill -0 "$wxfed_pid" 2>/dev/null || die "wxfed serve exited (see its log)"
    [ "$i" -eq 300 ] && die "wxfed not ready after 30s"
    sleep 0.1
done
log "wxfed ready (pid $wxfed_pid)"

echo "$PASSWORD" | "$bin" user add "$USERNAME" --name "Alice Example" --email alice@example.com \
    --email-verified --password-stdin >"$tmp/user-add.out" 2>&1 ||
    { cat "$tmp/user-add.out"; die "wxfed user add failed"; }

"$bin" client add apache \
    --redirect-uri "$RP/protected/redirect_uri" \
    --post-logout-redirect-uri "$RP/loggedout.html" \
    --id-token-alg "$E2E_ALG" --access-token-alg "$E2E_ALG" \
    --first-party --json >"$tmp/client.json" 2>"$tmp/client-add.err" ||
    { cat "$tmp/client.json" "$tmp/client-add.err"; die "wxfed client add failed"; }
read -r CLIENT_ID CLIENT_SECRET < <(node -e '
const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (!c.client_id || !c.client_secret) { console.error("no client_id/client_secret in", JSON.stringify(c)); process.exit(1); }
console.log(c.client_id, c.client_secret);
' "$tmp/client.json") || { cat "$tmp/client.json"; die "could not read client_id/client_secret from client add --json"; }
log "registered client $CLIENT_ID"

curl -fs -o "$tmp/discovery.json" "$ISSUER/.well-known/openid-configuration" ||
    log "warning: discovery document not served (mod_auth_openidc will fail to fetch it)"

# --- Apache + mod_auth_openidc ---------------------------------------------
mkdir -p "$tmp/apache/logs" "$tmp/apache/run" "$tmp/apache/htdocs/protected"
chmod -R a+rX "$tmp/apache/htdocs"
cat >"$tmp/apache/htdocs/loggedout.html" <<'HTML'
<!doctype html>
<html><head><meta charset="utf-8"><title>Logged out</title></head>
<body><h1 id="e2e-marker">Logged out of the relying party</h1></body></html>
HTML
cat >"$tmp/apache/htdocs/protected/index.html" <<'HTML'
<!doctype html>
<html><head><meta charset="utf-8"><title>Protected</title></head>
<body><h1 id="e2e-marker">Protected by mod_auth_openidc</h1></body></html>
HTML

if [ "$(id -u)" -eq 0 ]; then
    run_as="User www-data
Group www-data"
    id www-data >/dev/null 2>&1 || run_as="User nobody
Group nogroup"
else
    run_as="# not root: children keep the current user"
fi
passphrase="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"

apache_conf="$tmp/apache/httpd.conf"
cat >"$apache_conf" <<CONF
ServerRoot "$tmp/apache"
ServerName 127.0.0.1:$RP_PORT
Listen 127.0.0.1:$RP_PORT
PidFile "$tmp/apache/run/httpd.pid"
DefaultRuntimeDir "$tmp/apache/run"
ErrorLog "$tmp/apache/logs/error.log"
LogLevel warn auth_openidc:debug
$run_as

LoadModule mpm_event_module $MODULES/mod_mpm_event.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule authz_user_module $MODULES/mod_authz_user.so
LoadModule authn_core_module $MODULES/mod_authn_core.so
LoadModule mime_module $MODULES/mod_mime.so
LoadModule dir_module $MODULES/mod_dir.so
LoadModule alias_module $MODULES/mod_alias.so
LoadModule headers_module $MODULES/mod_headers.so
<IfModule !log_config_module>
    LoadModule log_config_module $MODULES/mod_log_config.so
</IfModule>
LoadModule auth_openidc_module $MODULES/mod_auth_openidc.so

StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
MinSpareThreads 4
MaxSpareThreads 16

LogFormat "%h \"%r\" %>s %b \"%{Location}o\"" e2e
CustomLog "$tmp/apache/logs/access.log" e2e
TypesConfig /etc/mime.types
DirectoryIndex index.html
DocumentRoot "$tmp/apache/htdocs"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "$tmp/apache/htdocs">
    Require all granted
</Directory>

OIDCProviderMetadataURL $ISSUER/.well-known/openid-configuration
OIDCClientID $CLIENT_ID
OIDCClientSecret $CLIENT_SECRET
# Only the client's algorithm is acceptable for its ID tokens.
OIDCIDTokenSignedResponseAlg $E2E_ALG
OIDCRedirectURI $RP/protected/redirect_uri
OIDCCryptoPassphrase $passphrase
OIDCScope "openid profile email"
OIDCPKCEMethod S256
OIDCInfoHook iat userinfo id_token
OIDCCookieSameSite On

<Location /protected>
    AuthType openid-connect
    Require valid-user
</Location>
CONF

"$APACHE2" -f "$apache_conf" -t >"$tmp/apache/configtest.out" 2>&1 ||
    { cat "$tmp/apache/configtest.out"; die "Apache config test failed"; }
"$APACHE2" -f "$apache_conf" -k start || die "Apache did not start"
for i in $(seq 100); do
    if curl -fsS -o /dev/null "$RP/loggedout.html" 2>/dev/null; then break; fi
    [ "$i" -eq 100 ] && die "Apache not answering on $RP after 10s"
    sleep 0.1
done
log "Apache ready (pid $(cat "$tmp/apache/run/httpd.pid"))"

# --- the browser -----------------------------------------------------------
set +e
RP_URL="$RP" OP_ISSUER="$ISSUER" E2E_USERNAME="$USERNAME" E2E_PASSWORD="$PASSWORD" \
    E2E_ARTIFACTS="$artifacts" E2E_RESULTS="$tmp/results" \
    node "$here/mod_auth_openidc.mjs"
node_rc=$?
set -e
[ -f "$tmp/results" ] || die "the Playwright script crashed (exit $node_rc) before reporting"
read -r passed failed <"$tmp/results"
[ "$failed" -eq 0 ] || exit 1
[ "$node_rc" -eq 0 ] || die "the Playwright script exited $node_rc"
exit 0
