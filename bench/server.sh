#!/usr/bin/env bash
# Starts the Go server as a bench target (../shared/bench/run.sh --cmd go=...):
# a fresh embedded store per start, rate limits lifted, quiet logs. It ends in
# exec, so the PID run.sh records is the server's own.
#   COMMSERVER_BIN   the binary (default: bin/commserver of this checkout)
#   BENCH_ROOM_POLICY  open (default: the Node reference has no room registry) or members
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${COMMSERVER_BIN:-$here/bin/commserver}
data=$(mktemp -d "${TMPDIR:-/tmp}/commserver-bench.XXXXXX")
export DATA_DIR=$data
export CHAT_ROOM_POLICY=${BENCH_ROOM_POLICY:-open}
export SOCKET_EVENTS_PER_MINUTE=100000000 SOCKET_EVENT_BURST=100000000
export LOG_LEVEL=${LOG_LEVEL:-warn}
# crossnode gives both pods REDIS_URL: they cluster under this run's prefix.
export CLUSTER_REDIS_PREFIX=${BENCH_REDIS_PREFIX:-fitmate:bench:}
exec "$bin"
