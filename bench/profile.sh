#!/usr/bin/env bash
# Profiles both pods of one crossnode run (senders on pod A, receivers on pod
# B, one Redis), pinned as ../shared/bench/run.sh pins them: Redis and the
# pods on CPU 0, the load generator on CPU 1. Prints each process's share of
# the CPU during the run and saves CPU profiles of both pods.
#
#   bench/profile.sh [OUT]     (default /tmp/commserver-profile-TIME)
#
# env: COMMSERVER_BIN (bin/commserver of this checkout, built if absent),
#      SHARED_BENCH (../shared/bench), SECONDS_PROFILED (6), SETUP_SECONDS (8:
#      when profiling starts after the load generator), LOADGEN_ARGS
#      (--rooms 10 --members 100 --window 16 --duration 15s).
# Read the results with: go tool pprof -top OUT/A.cpu (or B.cpu).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SHARED_BENCH:-$here/../shared/bench}
out=${1:-/tmp/commserver-profile-$(date +%Y%m%d-%H%M%S)}
bin=${COMMSERVER_BIN:-$here/bin/commserver}
secs=${SECONDS_PROFILED:-6}
mkdir -p "$out"
[[ -x $bin ]] || (cd "$here" && go build -o bin/commserver ./cmd/commserver)
loadgen=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fitmate-bench}/bin/loadgen
[[ -x $loadgen ]] || { echo "profile: $loadgen missing: run bench/run.sh once (it builds the load generator)" >&2; exit 1; }
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_port() {
  for _ in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "profile: nothing listens on $1" >&2
  return 1
}

taskset -c 0 redis-server --bind 127.0.0.1 --port 4399 --save '' --appendonly no >"$out/redis.log" 2>&1 &
pids+=($!)
redis_pid=$!
wait_port 4399
# The same secrets as ../shared/bench/run.sh: the load generator signs with it.
export JWT_SECRET=${JWT_SECRET:-bench-secret-0123456789abcdef0123456789abcdef0123456789abcdef01}
export SERVICE_API_KEY=${SERVICE_API_KEY:-bench-service-key}
export REDIS_URL=redis://127.0.0.1:4399 BENCH_REDIS_PREFIX=fitmate:profile:$(date +%s):
for pod in A:4401:6060 B:4402:6061; do
  IFS=: read -r name port pport <<<"$pod"
  env PORT="$port" HOST=127.0.0.1 PPROF_ADDR=127.0.0.1:$pport COMMSERVER_BIN="$bin" \
    taskset -c 0 "$here/bench/server.sh" >"$out/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
  wait_port "$port"
done

# shellcheck disable=SC2086
taskset -c 1 "$loadgen" crossnode --url ws://127.0.0.1:4401 --url-b ws://127.0.0.1:4402 \
  --server-pid "$pid_A,$pid_B,$redis_pid" --json "$out/result.jsonl" --target go --rep 1 \
  ${LOADGEN_ARGS:---rooms 10 --members 100 --window 16 --duration 15s} >"$out/loadgen.out" 2>"$out/loadgen.log" &
lg=$!
# The load generator prints nothing until it ends: connecting, joining and
# its warm-up take a few seconds; profile the middle of the window.
sleep "${SETUP_SECONDS:-8}"
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
syscw() { awk '/^syscw/ {print $2}' "/proc/$1/io"; }
t0A=$(ticks "$pid_A") t0B=$(ticks "$pid_B") t0R=$(ticks "$redis_pid") w0=$(syscw "$pid_B") s0=$(date +%s.%N)
curl -s "http://127.0.0.1:6060/debug/pprof/profile?seconds=$secs" -o "$out/A.cpu" &
ca=$!
curl -s "http://127.0.0.1:6061/debug/pprof/profile?seconds=$secs" -o "$out/B.cpu" &
cb=$!
wait "$ca" "$cb"
t1A=$(ticks "$pid_A") t1B=$(ticks "$pid_B") t1R=$(ticks "$redis_pid") w1=$(syscw "$pid_B") s1=$(date +%s.%N)
wait "$lg" || true
hz=$(getconf CLK_TCK)
awk -v a=$((t1A - t0A)) -v b=$((t1B - t0B)) -v r=$((t1R - t0R)) -v w=$((w1 - w0)) -v s="$(echo "$s1 - $s0" | bc)" -v hz="$hz" \
  'BEGIN { printf "CPU while profiled (%.1f s): pod A %.0f%%, pod B %.0f%%, Redis %.0f%%; pod B write syscalls %.0f/s\n", s, 100*a/hz/s, 100*b/hz/s, 100*r/hz/s, w/s }' | tee "$out/split.txt"
grep -o '"delivered_per_s":[0-9.]*\|"loss_pct":[0-9.e-]*\|"p99_ms":[0-9.]*' "$out/result.jsonl" | tr '\n' ' ' | tee -a "$out/split.txt"
echo
echo "profiles: $out/A.cpu $out/B.cpu" >&2
