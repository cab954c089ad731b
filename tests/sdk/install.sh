#!/usr/bin/env bash
# Installs what the SDK facade test needs: a Python venv (outside the repo) with
# wechatpy (and openapi-spec-validator, for the management API's tests) from
# PyPI, pinned in requirements.txt. Idempotent: a venv that
# already has exactly those versions is left alone.
#
#   bash tests/sdk/install.sh            # venv at $WXFED_SDK_VENV or ~/.cache/wxfed/venv
#
# The last line names the venv's python, which run.sh uses.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${WXFED_SDK_VENV:-$HOME/.cache/wxfed/venv}"
python="${PYTHON:-python3}"
req="$here/requirements.txt"

command -v "$python" >/dev/null || { echo "install.sh: $python not found (set PYTHON=...)" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)' ||
    { echo "install.sh: need Python >= 3.8, have $("$python" --version 2>&1)" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ]; then
    echo "install.sh: creating venv $venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv" || {
        echo "install.sh: python -m venv failed (on Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi

# Up to date when every pinned requirement is installed at its version.
up_to_date() {
    "$venv/bin/python" - "$req" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, pinned = line.partition("==")
    try:
        if version(name) != pinned:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

if up_to_date; then
    echo "install.sh: venv up to date"
else
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    up_to_date || { echo "install.sh: requirements still missing after pip install" >&2; exit 1; }
fi
"$venv/bin/python" -c 'import wechatpy' || { echo "install.sh: wechatpy does not import" >&2; exit 1; }
"$venv/bin/python" -c 'import openapi_spec_validator, jsonschema' ||
    { echo "install.sh: openapi-spec-validator does not import" >&2; exit 1; }
echo "install.sh: ok (wechatpy $("$venv/bin/python" -c 'from importlib.metadata import version; print(version("wechatpy"))')): $venv/bin/python"
