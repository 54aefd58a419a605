#!/bin/sh
# The Python base image, made from Debian's packages instead of pulled from a registry:
# Debian bookworm (debootstrap, minbase) with python3 and python3-venv (Python 3.11), for
# hosts that can reach a Debian mirror and PyPI but no container registry. The service
# image is then built on it with the Dockerfile's PYTHON_IMAGE argument:
#
#   sudo deploy/base-image.sh                               # -> localhost/python-base:bookworm
#   docker build --build-arg PYTHON_IMAGE=localhost/python-base:bookworm -t liveness .
#
# Behind a TLS-inspecting proxy (a company network that re-signs HTTPS with its own CA), pip
# in the build must trust that CA: --ca-bundle FILE adds a PEM bundle holding it (e.g. the
# host's /etc/ssl/certs/ca-certificates.crt) to the base's trust store, which pip is pointed
# at (PIP_CERT). Without the option the base trusts Debian's CA list only.
#
# Options (or the variables in brackets):
#   --engine docker|podman   [ENGINE]     default: docker if its daemon answers, else podman
#   --tag NAME               [TAG]        default: localhost/python-base:bookworm
#   --ca-bundle FILE         [CA_BUNDLE]  a PEM file of extra CAs to trust
#   --mirror URL             [MIRROR]     default: http://deb.debian.org/debian
#   --force                               rebuild even if an image of the same inputs exists
# Needs root (debootstrap) and the debootstrap package. The image is labelled with a hash
# of this script, the CA bundle and the mirror; a second run with the same inputs does
# nothing. Prints the image name on its last line.
set -eu

SUITE=bookworm
ENGINE="${ENGINE:-}"
TAG="${TAG:-localhost/python-base:$SUITE}"
CA_BUNDLE="${CA_BUNDLE:-}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${SECURITY_MIRROR:-$(dirname "$MIRROR")/debian-security}"
FORCE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --engine) ENGINE="$2"; shift 2 ;;
        --tag) TAG="$2"; shift 2 ;;
        --ca-bundle) CA_BUNDLE="$2"; shift 2 ;;
        --mirror) MIRROR="$2"; SECURITY_MIRROR="$(dirname "$2")/debian-security"; shift 2 ;;
        --force) FORCE=1; shift ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "base-image: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$ENGINE" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then ENGINE=docker
    else ENGINE=podman; fi
fi
command -v "$ENGINE" >/dev/null 2>&1 || { echo "base-image: $ENGINE not found" >&2; exit 1; }
if [ -n "$CA_BUNDLE" ] && ! grep -q 'BEGIN CERTIFICATE' "$CA_BUNDLE"; then
    echo "base-image: $CA_BUNDLE is not a PEM certificate bundle" >&2
    exit 1
fi

# What the image is made of: a changed script, bundle or mirror makes a new one.
inputs=$( { cat "$0"; echo "$MIRROR $SECURITY_MIRROR"; [ -z "$CA_BUNDLE" ] || cat "$CA_BUNDLE"; } \
    | sha256sum | cut -c1-16)
if [ -z "$FORCE" ] && [ "$($ENGINE image inspect --format \
        '{{ index .Config.Labels "liveness.base-inputs" }}' "$TAG" 2>/dev/null)" = "$inputs" ]; then
    echo "base-image: $TAG is up to date" >&2
    echo "$TAG"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "base-image: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] \
    || { echo "base-image: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "base-image: debootstrap $SUITE from $MIRROR" >&2
PATH="$PATH:/usr/sbin:/sbin" debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >&2
cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
# Documentation, manual pages and translations are left out, now and by later installs, as
# Debian's own slim images do (the copyright files stay).
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/lintian/*' \
    > "$rootfs/etc/dpkg/dpkg.cfg.d/slim"
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/dev/*
debian="localhost/debian:$SUITE"
tar --numeric-owner -C "$rootfs" -c . | "$ENGINE" import - "$debian" >&2

mkdir "$work/context"
if [ -n "$CA_BUNDLE" ]; then
    cp "$CA_BUNDLE" "$work/context/extra-ca.crt"
else
    : > "$work/context/extra-ca.crt"
fi
# python:3.11-slim's contents, as far as the service needs them: python3 (3.11 in bookworm,
# also as `python`), venv with its bundled pip, and the CA list. The extra CAs join
# /etc/ssl/certs/ca-certificates.crt, which pip (PIP_CERT) and Python's ssl are pointed at.
cat > "$work/context/Containerfile" <<EOF
FROM $debian
COPY extra-ca.crt /usr/local/share/ca-certificates/extra-ca.crt
RUN apt-get update \\
    && apt-get install -y --no-install-recommends python3 python3-venv python-is-python3 ca-certificates \\
    && ( [ -s /usr/local/share/ca-certificates/extra-ca.crt ] \\
         || rm /usr/local/share/ca-certificates/extra-ca.crt ) \\
    && update-ca-certificates \\
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log
ENV LANG=C.UTF-8 \\
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL liveness.base-inputs=$inputs
CMD ["python3"]
EOF
"$ENGINE" build --network host -t "$TAG" "$work/context" >&2
echo "$TAG"
