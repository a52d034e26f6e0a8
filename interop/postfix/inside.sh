#!/usr/bin/env bash
# Runs as `unshare --mount --propagation private -- bash inside.sh STATE DAEMON` (start.py):
# in this private mount namespace /etc/resolv.conf is the world's, so Postfix (the libc
# resolver) and mta-sts-daemon (c-ares) both resolve through the world's DNS, while the
# machine's own resolv.conf stays untouched. Private propagation keeps the bind mount from
# leaking back to the host namespace.
set -euo pipefail
state=$1
daemon=$2

mount --bind "$state/resolv.conf" /etc/resolv.conf

# The policy daemon fetches policies with aiohttp, whose default SSL context loads OpenSSL's
# default verify paths: SSL_CERT_FILE makes that the world's CA alone.
SSL_CERT_FILE="$MAILTLS_CA_FILE" "$daemon" -c "$state/mta-sts-daemon.yml" -v debug \
    -l "$state/mta-sts.log" </dev/null &
echo "$!" >"$state/mta-sts.pid"

# start-fg keeps postfix-script (and so this namespace) alive as long as the master runs;
# `postfix -c STATE/etc stop` (stop.py) ends it.
exec postfix -c "$state/etc" start-fg
