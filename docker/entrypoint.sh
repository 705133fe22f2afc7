#!/bin/sh
# prober's container entrypoint: read secrets from files, derive --shard from a StatefulSet pod's ordinal, then
# exec prober.
#
#   NAME_FILE=/run/secrets/x -> NAME=<the file's content, trailing newlines removed>, for ${NAME} in check files
#                            (ingest tokens, API keys): only for files under /run/secrets/ (PROBER_SECRETS_DIR),
#                            so SSL_CERT_FILE=/etc/ssl/... and the like stay as they are, and never for PROBER_*
#                            names (PROBER_TOKEN_FILE is an option of its own).
#   PROBER_SHARD=ordinal/N   (or auto/N) -> PROBER_SHARD=<ordinal+1>/N, the ordinal being the number after the
#                            last '-' of PROBER_POD_NAME (else $HOSTNAME, else `uname -n`): agent-eu-west-2 -> 3/N
#   PROBER_SHARD=I/N         is left alone, as is everything else.
#
# `exec` keeps prober the direct child of tini, so SIGTERM reaches it and it stops gracefully.
set -eu

for var in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
  case "$var" in PROBER_*) continue ;; esac
  eval "file=\${${var}_FILE:-}"
  case "$file" in "${PROBER_SECRETS_DIR:-/run/secrets}"/*) ;; *) continue ;; esac
  eval "already=\${${var}+set}"
  if [ "$already" = set ]; then
    echo "prober-entrypoint: both $var and ${var}_FILE are set; using $var" >&2
    continue
  fi
  if [ ! -r "$file" ]; then
    echo "prober-entrypoint: ${var}_FILE=$file cannot be read by uid $(id -u) (is the secret mounted, mode 0644?)" >&2
    exit 2
  fi
  value=$(cat "$file")
  export "$var=$value"
done

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
