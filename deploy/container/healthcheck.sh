#!/bin/bash
# The container's HEALTHCHECK: GET /-/healthy and succeed on "200".
#
# The runtime image has no curl or wget, and the exporter has no client mode, so this uses
# bash's /dev/tcp (bash is an essential package, present in every Debian image) and reads
# only the status line. Exit 0 healthy, 1 not.
#
# NETPROBE_HEALTH_ADDRESS: host:port to ask, default 127.0.0.1:9469 (matches the image's
# --web.listen-address=:9469). Set it when you change the listen address.
set -u
address=${NETPROBE_HEALTH_ADDRESS:-127.0.0.1:9469}
host=${address%:*}
port=${address##*:}
host=${host#[}
host=${host%]}
[ -n "$host" ] || host=127.0.0.1

{ exec 3<>"/dev/tcp/${host}/${port}"; } 2>/dev/null || { echo "cannot connect to ${address}"; exit 1; }
printf 'GET /-/healthy HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$address" >&3
read -r -t 5 protocol status _ <&3 || { echo "no answer from ${address}"; exit 1; }
exec 3<&-
if [ "${status:-}" = 200 ]; then
  exit 0
fi
echo "${address}/-/healthy answered: ${protocol:-} ${status:-}"
exit 1
