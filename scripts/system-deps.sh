#!/bin/sh
# Install the Debian packages the test suite uses for real, if they are missing:
# nginx (scale-out test), chromium (demo page test), and podman with runc, netavark,
# aardvark-dns and debootstrap (the image tests: the Dockerfile built and run, compose up).
set -eu
missing=""
have_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$missing chromium"
if command -v dpkg-query >/dev/null 2>&1; then
    for package in podman runc netavark aardvark-dns debootstrap; do
        have_package "$package" || missing="$missing $package"
    done
fi
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: no apt-get here; install$missing by hand (tests that need them skip)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "system-deps: not root and no sudo; install$missing by hand (tests that need them skip)" >&2
        exit 0
    fi
fi
echo "system-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
