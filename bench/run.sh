#!/usr/bin/env bash
# make bench: this server against the Node reference (socket.io 4.8.4), in the
# same run, with ../shared/bench (load generator, Node reference, run.sh).
#
#   bench/run.sh                 all scenarios below, REPS rounds each
#   bench/run.sh fanout ...      one run.sh scenario with your loadgen flags
#
# env: REPS (3), SHARED_BENCH (../shared/bench), OUT (/tmp/commserver-bench-TIME)
# Results: OUT/<scenario>/results.jsonl and OUT/report.txt (medians, ratios to noderef).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SHARED_BENCH:-$here/../shared/bench}
[[ -x $shared/run.sh ]] || { echo "bench: $shared/run.sh not found (set SHARED_BENCH)" >&2; exit 1; }
reps=${REPS:-3}
out=${OUT:-/tmp/commserver-bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out" "$here/bin"
(cd "$here" && go build -o bin/commserver ./cmd/commserver)
rm -rf "${TMPDIR:-/tmp}"/commserver-bench.* # stores of earlier runs
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

go_cmd="$here/bench/server.sh"
# crossnode's two pods share this run's own key prefix on Redis.
export BENCH_REDIS_PREFIX=${BENCH_REDIS_PREFIX:-fitmate:bench:$(date +%s):}
one() { # one NAME run.sh-args...
  local name=$1; shift
  echo "== $name" >&2
  "$shared/run.sh" --targets noderef,go --cmd go="$go_cmd" --reps "$reps" --out "$out/$name" "$@" \
    >"$out/$name.log" 2>&1 || echo "bench: $name failed, see $out/$name.log" >&2
  tail -n 25 "$out/$name/report.txt" 2>/dev/null || true
}

if (($#)); then
  one custom "$@"
else
  one connect-10000 connect --n 10000
  one connect-18000 connect --n 18000
  one fanout-10x100-w16 fanout --rooms 10 --members 100 --window 16
  one fanout-1x1000-w16 fanout --rooms 1 --members 1000 --window 16
  one fanout-10x100-r300 fanout --rooms 10 --members 100 --rate 300
  one crossnode-10x100-w16 crossnode --rooms 10 --members 100 --window 16
fi
loadgen=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fitmate-bench}/bin/loadgen
"$loadgen" report --max-others "${MAX_OTHERS:-5}" --ref noderef "$out"/*/results.jsonl | tee "$out/report.txt"
echo "results under $out" >&2
