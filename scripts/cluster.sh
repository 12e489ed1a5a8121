#!/usr/bin/env bash
# scripts/cluster.sh (make cluster): the cluster without Docker. N pods of the
# server on consecutive ports, one Redis, one store shared by every pod, and
# the sticky proxy in front, until Ctrl-C (which stops them all gracefully).
#
#   PODS        number of pods (2)
#   BASE_PORT   the first pod's port (3001; the others follow)
#   PROXY_ADDR  where the proxy listens (127.0.0.1:3000)
#   AFFINITY    the proxy's affinity: sid, cookie, ip or none (sid)
#   REDIS_URL   the one Redis (redis://127.0.0.1:6379)
#   MONGODB_URI the one store; unset: cmd/devstore serves the embedded store
#               on DEVSTORE_ADDR (127.0.0.1:27018) from DEVSTORE_DIR (./data/devstore)
#
# Every other variable of the server (JWT_SECRET, SERVICE_API_KEY, ...) is
# passed to each pod as it is; `make cluster` sets development values.
# docs/cluster.md describes it.
set -euo pipefail
cd "$(dirname "$0")/.."

PODS="${PODS:-2}"
BASE_PORT="${BASE_PORT:-3001}"
PROXY_ADDR="${PROXY_ADDR:-127.0.0.1:3000}"
AFFINITY="${AFFINITY:-sid}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
DEVSTORE_ADDR="${DEVSTORE_ADDR:-127.0.0.1:27018}"
DEVSTORE_DIR="${DEVSTORE_DIR:-./data/devstore}"
GO="${GO:-go}"

if ! [[ "$PODS" =~ ^[1-9][0-9]*$ ]]; then
	echo "cluster: PODS=$PODS: want a number of pods" >&2
	exit 2
fi

pids=()
stop() {
	trap - EXIT INT TERM
	if [ "${#pids[@]}" -gt 0 ]; then
		echo "cluster: stopping" >&2
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
}
trap stop EXIT
trap 'exit 130' INT TERM

# wait_tcp host:port seconds: until something listens there.
wait_tcp() {
	local host="${1%:*}" port="${1##*:}" deadline=$((SECONDS + $2))
	until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "cluster: nothing listens on $1 after $2s" >&2
			return 1
		fi
		sleep 0.2
	done
}

# wait_http url seconds: until it answers 200.
wait_http() {
	local deadline=$((SECONDS + $2))
	until [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = "200" ]; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "cluster: $1 not ready after $2s" >&2
			return 1
		fi
		sleep 0.2
	done
}

# run name command...: starts it in the background, its output prefixed.
run() {
	local name="$1"
	shift
	"$@" > >(sed -u "s/^/[$name] /") 2>&1 &
	pids+=("$!")
}

mkdir -p bin
"$GO" build -o bin/commserver ./cmd/commserver
"$GO" build -o bin/stickyproxy ./cmd/stickyproxy

redis_hostport="${REDIS_URL#*://}"
redis_hostport="${redis_hostport#*@}"
redis_hostport="${redis_hostport%%/*}"
[[ "$redis_hostport" == *:* ]] || redis_hostport="$redis_hostport:6379"
wait_tcp "$redis_hostport" 2 || { echo "cluster: start Redis first (REDIS_URL=$REDIS_URL)" >&2; exit 1; }

if [ -z "${MONGODB_URI:-}" ]; then
	if [ ! -d cmd/devstore ]; then
		echo "cluster: set MONGODB_URI, or build with cmd/devstore (the embedded store served on a port)" >&2
		exit 1
	fi
	"$GO" build -o bin/devstore ./cmd/devstore
	mkdir -p "$DEVSTORE_DIR"
	run store env DEVSTORE_ADDR="$DEVSTORE_ADDR" DATA_DIR="$DEVSTORE_DIR" bin/devstore
	wait_tcp "$DEVSTORE_ADDR" 30
	export MONGODB_URI="mongodb://$DEVSTORE_ADDR/"
fi

backends=()
for ((i = 0; i < PODS; i++)); do
	port=$((BASE_PORT + i))
	run "pod$((i + 1))" env PORT="$port" HOST="${HOST:-127.0.0.1}" bin/commserver
	backends+=("http://127.0.0.1:$port")
done
for b in "${backends[@]}"; do
	wait_http "$b/readyz" 60
done
run proxy bin/stickyproxy -listen "$PROXY_ADDR" -affinity "$AFFINITY" "${backends[@]}"
wait_tcp "$PROXY_ADDR" 10

echo "cluster: $PODS pods (${backends[*]}) behind http://$PROXY_ADDR (affinity $AFFINITY), Redis $REDIS_URL; Ctrl-C stops" >&2
# Until one of them exits (or Ctrl-C): then the others are stopped too.
wait -n "${pids[@]}" || true
echo "cluster: a process exited" >&2
exit 1
