#!/bin/sh
# Render /etc/nginx/templates/*.template into /etc/nginx/conf.d/ (the NGINX_* variables
# only: nginx's own $variables stay), then run the command.
set -eu
names=$(env | sed -n 's/^\(NGINX_[A-Z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
for template in /etc/nginx/templates/*.template; do
    [ -e "$template" ] || continue
    out="/etc/nginx/conf.d/$(basename "$template" .template)"
    envsubst "$names" < "$template" > "$out"
    echo "entrypoint: $template -> $out" >&2
done
exec "$@"
