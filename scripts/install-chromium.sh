#!/usr/bin/env bash
# Debian's Chromium + ChromeDriver for the browser tests (Playwright's own browser download
# does not work offline). Needs root or sudo; does nothing when Chromium is already there.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "Chromium is missing and this user cannot install it: the browser tests will fail." >&2
        echo "Install it with: apt-get install -y chromium chromium-driver" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
chromium --version
