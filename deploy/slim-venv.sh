#!/bin/sh
# Leave out of an installed virtual environment what the server never uses at run time:
# pip, setuptools and wheel (nothing is installed in a running container), the packages'
# own test suites, and C headers and Cython sources (nothing is compiled there). Run by the
# Dockerfile after `make install-serve` / `make install-gpu`, before /opt/venv is copied
# into the runtime image; the container tests run the image it leaves.
#
#   deploy/slim-venv.sh VENV
set -eu
venv="$1"
site=$(echo "$venv"/lib/python3.*/site-packages)
[ -d "$site" ] || { echo "slim-venv: no site-packages in $venv" >&2; exit 1; }
before=$(du -sm "$venv" | cut -f1)
for dist in setuptools wheel pip; do  # pip last: it removes the others
    if "$venv/bin/python" -c "import importlib.metadata as m; m.distribution('$dist')" 2>/dev/null; then
        "$venv/bin/python" -m pip --disable-pip-version-check uninstall -y -q "$dist"
    fi
done
find "$site" -depth -type d -name tests -exec rm -rf {} +
find "$site" -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.pxd' -o -name '*.pyx' \
    -o -name '*.c' -o -name '*.cpp' \) -delete
find "$site" -depth -mindepth 1 -type d -empty -delete
echo "slim-venv: $venv ${before} MB -> $(du -sm "$venv" | cut -f1) MB" >&2
