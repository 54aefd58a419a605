#!/bin/sh
# Restart the scaled replicas one at a time, so that nginx always has a ready one: after a
# model upgrade (a new directory under MODELS_DIR, LIVENESS_MODEL_DIR pointing at it through
# a symlink) or any change a restart picks up. Each replica is restarted (SIGTERM: it stops
# taking connections, its uploads finish, its streams are told and closed), waited for until
# healthy (model loaded), then given GRACE seconds before the next: nginx skips a replica
# for 10 s (fail_timeout) after a refused connection, and must take it back first.
#
#   deploy/rolling-restart.sh [SERVICE]    (default: replica; run where docker-compose.yml is)
set -eu
service="${1:-replica}"
grace="${GRACE:-12}"
health_timeout="${HEALTH_TIMEOUT:-180}"

ids=$(docker compose ps -q "$service")
if [ -z "$ids" ]; then
    echo "rolling-restart: no running $service container" >&2
    exit 1
fi
count=$(echo "$ids" | wc -l)
if [ "$count" -lt 2 ]; then
    echo "rolling-restart: one $service container: it is down while it restarts" >&2
fi
for id in $ids; do
    name=$(docker inspect -f '{{.Name}}' "$id")
    echo "rolling-restart: restarting $name"
    docker restart -t 30 "$id" >/dev/null
    waited=0
    until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]; do
        if [ "$waited" -ge "$health_timeout" ]; then
            echo "rolling-restart: $name not healthy after $health_timeout s; stopping here" >&2
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "rolling-restart: $name healthy after ${waited} s"
    sleep "$grace"
done
echo "rolling-restart: $count $service container(s) restarted"
