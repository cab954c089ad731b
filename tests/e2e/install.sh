#!/usr/bin/env bash
# Installs what the end-to-end test needs: Apache httpd + mod_auth_openidc (the
# relying party), Debian's chromium (the browser), Node.js/npm, and the
# playwright-core npm package (a driver only; it never downloads a browser).
# Idempotent: only touches apt when something is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# fonts-noto-cjk: Chinese pages in screenshots show characters, not boxes.
for pkg in apache2 libapache2-mod-auth-openidc chromium curl fonts-noto-cjk; do
    have_pkg "$pkg" || need+=("$pkg")
done
# Node may come from Debian or from NodeSource; accept any node >= 18 with npm.
node_ok=false
if command -v node >/dev/null && command -v npm >/dev/null; then
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    [ "$major" -ge 18 ] && node_ok=true
fi
$node_ok || need+=(nodejs npm)

if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install.sh: missing packages ${need[*]}; run as root" >&2
        exit 1
    fi
    echo "install.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # policy-rc.d keeps the package scripts from starting the system-wide apache2
    # service; the test runs its own instance on its own config.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -q --no-install-recommends "${need[@]}"
else
    echo "install.sh: apt packages present"
fi

for f in /usr/sbin/apache2 /usr/lib/apache2/modules/mod_auth_openidc.so /usr/bin/chromium; do
    [ -e "$f" ] || { echo "install.sh: $f missing after install" >&2; exit 1; }
done

cd "$here"
if [ -f package-lock.json ]; then
    if [ -d node_modules/playwright-core ] && \
       [ "$(node -p 'require("./node_modules/playwright-core/package.json").version')" = \
         "$(node -p 'require("./package-lock.json").packages["node_modules/playwright-core"].version')" ]; then
        echo "install.sh: node_modules up to date"
    else
        npm ci --no-audit --no-fund
    fi
else
    npm install --no-audit --no-fund
fi
echo "install.sh: ok ($(/usr/bin/chromium --version 2>/dev/null | head -1); playwright-core $(node -p 'require("./node_modules/playwright-core/package.json").version'))"
