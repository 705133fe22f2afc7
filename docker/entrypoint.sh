#!/bin/sh
# prober's container entrypoint: derive --shard from a StatefulSet pod's ordinal, then exec prober.
#
#   PROBER_SHARD=ordinal/N   (or auto/N) -> PROBER_SHARD=<ordinal+1>/N, the ordinal being the number after the
#                            last '-' of PROBER_POD_NAME (else $HOSTNAME, else `uname -n`): agent-eu-west-2 -> 3/N
#   PROBER_SHARD=I/N         is left alone, as is everything else.
#
# `exec` keeps prober the direct child of tini, so SIGTERM reaches it and it stops gracefully.
set -eu

case "${PROBER_SHARD:-}" in
  ordinal/* | auto/*)
    count=${PROBER_SHARD#*/}
    name=${PROBER_POD_NAME:-${HOSTNAME:-$(uname -n)}}
    ordinal=${name##*-}
    case "$count" in '' | *[!0-9]*) count=bad ;; esac
    case "$ordinal" in '' | *[!0-9]*) ordinal=bad ;; esac
    if [ "$count" = bad ] || [ "$count" -lt 1 ]; then
      echo "prober-entrypoint: PROBER_SHARD=$PROBER_SHARD: expected ordinal/N with N >= 1, like ordinal/3" >&2
      exit 2
    fi
    if [ "$ordinal" = bad ]; then
      echo "prober-entrypoint: PROBER_SHARD=$PROBER_SHARD needs a pod name ending in -<ordinal>" \
        "(a StatefulSet pod such as agent-eu-west-0); got '$name'" >&2
      exit 2
    fi
    index=$((ordinal + 1))
    if [ "$index" -gt "$count" ]; then
      echo "prober-entrypoint: pod '$name' is ordinal $ordinal but PROBER_SHARD=$PROBER_SHARD has only $count" \
        "share(s); set N to the StatefulSet's replicas" >&2
      exit 2
    fi
    PROBER_SHARD="$index/$count"
    export PROBER_SHARD
    ;;
esac

exec "${PROBER_BIN:-prober}" "$@"
