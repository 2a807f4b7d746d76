#!/usr/bin/env bash
# Debian's Chromium + ChromeDriver for the browser tests (Playwright's own browser download
# does not work offline), and a colour emoji font so titles with emoji render in screenshots.
# Needs root or sudo; does nothing when both are already there.
set -euo pipefail
has_emoji_font() { command -v fc-list >/dev/null 2>&1 && fc-list : family | grep -i "color emoji" >/dev/null; }
if command -v chromium >/dev/null 2>&1 && has_emoji_font; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        if ! command -v chromium >/dev/null 2>&1; then
            echo "Chromium is missing and this user cannot install it: the browser tests will fail." >&2
            echo "Install it with: apt-get install -y chromium chromium-driver fonts-noto-color-emoji" >&2
            exit 1
        fi
        echo "No colour emoji font: emoji in titles show as boxes in the browser tests' screenshots." >&2
        echo "Install it with: apt-get install -y fonts-noto-color-emoji" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji >/dev/null
chromium --version
