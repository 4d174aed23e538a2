#!/bin/sh
# The compose edge: run nginx with the configuration the app writes (pages/edge.py)
# and reload it when the file changes, after `nginx -t` accepts it (a refused
# configuration is reported and the running one stays).
set -eu
CONF="${EDGE_ROOT:-/app/.data/edge}/nginx.conf"
PREFIX="$(dirname "$CONF")"
until [ -s "$CONF" ]; do echo "edge: waiting for $CONF"; sleep 2; done
mkdir -p "$PREFIX/logs" "$PREFIX/tmp"
nginx -t -q -c "$CONF" -p "$PREFIX"
nginx -c "$CONF" -p "$PREFIX" -g "daemon off;" &
NGINX=$!
trap 'kill -QUIT $NGINX; wait $NGINX; exit 0' TERM INT
last="$(cksum < "$CONF")"
while kill -0 "$NGINX" 2>/dev/null; do
  sleep 1
  now="$(cksum < "$CONF")"
  if [ "$now" != "$last" ]; then
    if nginx -t -q -c "$CONF" -p "$PREFIX"; then
      kill -HUP "$NGINX"
    else
      echo "edge: nginx refused the new configuration; keeping the old one" >&2
    fi
    last="$now"
  fi
done
