#!/usr/bin/env bash
# Sets up everything `make demo` and `make test` need on a fresh Debian machine:
# Debian packages (when running as root), a virtual environment and the Python packages.
# Safe to run again: it only installs what is missing.
set -euo pipefail
venv="${1:-.venv}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

python_bin="$(command -v python3.11 || command -v python3 || true)"
need_debs=()
if [ -z "$python_bin" ]; then
    need_debs+=(python3 python3-venv python3-dev)
elif ! "$python_bin" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need_debs+=(python3-venv)
fi
# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
if ! command -v chromium >/dev/null 2>&1; then
    need_debs+=(chromium)
fi
# PyICU (name romanisation for de-duplication, decision 0020) is built from source against
# Debian's ICU: it needs the ICU headers, pkg-config to find them, a C++ compiler and the
# Python headers.
if ! command -v pkg-config >/dev/null 2>&1; then
    need_debs+=(pkg-config)
fi
if ! pkg-config --exists icu-i18n 2>/dev/null; then
    need_debs+=(libicu-dev)
fi
if ! command -v g++ >/dev/null 2>&1; then
    need_debs+=(g++)
fi
if [ -n "$python_bin" ] && ! "$python_bin" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        >/dev/null 2>&1; then
    need_debs+=(python3-dev)
fi

# Working copies of evidence files without identifying metadata (decision 0019).
if ! command -v mat2 >/dev/null 2>&1; then
    need_debs+=(mat2)
fi

# ProofMode bundles' OpenPGP signatures are checked with GnuPG's gpg (decision 0031); the
# tests sign bundles with it too. Minimal Debian images do not have it.
if [ ! -x /usr/bin/gpg ]; then
    need_debs+=(gnupg)
fi

# The store's tests run on PostgreSQL too: the harness (tests/support/postgres.py) starts a
# throw-away server from Debian's package, as the package's unprivileged `postgres` user.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    need_debs+=(postgresql)
fi

# deploy/production's tests check its Caddyfile with Caddy and run it in front of a node; the
# reverse-proxy tests put Caddy with TLS from a throw-away CA in front of a node
# (tests/support/served.py, decision 0028); production deployments use the same package.
if ! command -v caddy >/dev/null 2>&1; then
    need_debs+=(caddy)
fi
# deploy/production's tests check its units with systemd-analyze.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    need_debs+=(systemd)
fi

if [ "${#need_debs[@]}" -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing Debian packages: ${need_debs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need_debs[@]}" >/dev/null
        python_bin="$(command -v python3.11 || command -v python3)"
    else
        echo "bootstrap: please install these Debian packages first: ${need_debs[*]}" >&2
        if [ -z "$python_bin" ]; then exit 1; fi
    fi
fi

"$python_bin" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"bootstrap: Minga needs Python 3.11 or newer, found {sys.version.split()[0]}")
PY

if [ ! -x "$venv/bin/python" ]; then
    echo "bootstrap: creating virtual environment in $venv"
    "$python_bin" -m venv "$venv"
fi
# Every version comes from the lock file, each download checked against its hashes (decision
# 0027; `make lock` rewrites it from pyproject.toml). The lock holds the build tools too, so the
# checkout itself is then installed without fetching anything unpinned.
echo "bootstrap: installing the locked dependencies of Minga, its embedded homeserver and" \
    "development tools (requirements/dev.lock)"
"$venv/bin/python" -m pip install --quiet --require-hashes -r "$repo/requirements/dev.lock"
echo "bootstrap: installing Minga from this checkout"
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$repo"
echo "bootstrap: ready"
