#!/usr/bin/env bash
# Instructions per proxied request: ringlb (static backend, 3 replicas on
# loopback) under valgrind --tool=callgrind, instrumentation switched on
# only while a fixed number of requests is sent, then the count divided by
# the requests.  callgrind counts instructions, not time, so the figure is
# the same from run to run on a busy machine; the kernel's side of each
# system call is not counted.
#
# The replicas are ringlb-replica processes.  Only ringlb runs under
# valgrind, some fifty times slower than natively, so the replicas always
# answer long before ringlb asks again and their speed does not change the
# figure; ringlb-replica needs nothing installed and answers what the
# end-to-end tests check.  Heartbeats are sent once a minute, so that the
# figure is the cost of proxied requests and not of time passing.  ringlb
# runs one worker (RINGLB_WORKERS=1, whatever the environment says): how
# the connections split among several event loops changes from run to run,
# and with it the events each turn of a loop finds, so the figure would
# move; callgrind runs a program's threads one at a time anyway.
#
#   usage: tests/bench/cost.sh BUILD_DIR
#   environment: COST_REQUESTS (10000), COST_CONCURRENCY (16),
#                COST_RUNS (2: the figure is measured twice and compared),
#                COST_OUT (a directory to keep the callgrind files in)
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
requests=${COST_REQUESTS:-10000}
conc=${COST_CONCURRENCY:-16}
runs=${COST_RUNS:-2}
work=$(mktemp -d /tmp/ringlb-cost.XXXXXX)
pids=()
lb_pid=

cleanup() {
	[ -n "$lb_pid" ] && kill "$lb_pid" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

me=cost
. "$here/ports.sh"

start_replicas

# One measured run: a fresh ringlb under callgrind, warmed up, then
# $requests requests with instrumentation on.  Prints the figure.
measure() {
	local run=$1 port out url
	port=$(free_port)
	out="$work/callgrind.out.$run"
	url="http://127.0.0.1:$port/home"
	RINGLB_WORKERS=1 valgrind --tool=callgrind --instr-atstart=no \
		--callgrind-out-file="$out" \
		"$build/ringlb" --listen "127.0.0.1:$port" --log-level warn \
		--health-interval 60000 --health-timeout 10000 \
		--replica "server-1=127.0.0.1:${backend_ports[0]}" \
		--replica "server-2=127.0.0.1:${backend_ports[1]}" \
		--replica "server-3=127.0.0.1:${backend_ports[2]}" \
		2>"$work/ringlb-$run.log" &
	lb_pid=$!
	for _ in $(seq 1 600); do
		curl -sf -o /dev/null "http://127.0.0.1:$port/heartbeat" && break
		kill -0 "$lb_pid" 2>/dev/null || {
			echo "cost: ringlb exited; see $work/ringlb-$run.log" >&2
			exit 1
		}
		sleep 0.1
	done
	# warm up: client and replica connections, allocator arenas
	"$build/ringlb-analyze" load --url "$url" --requests 2000 \
		--concurrency "$conc" >"$work/warmup-$run.txt"
	callgrind_control -i on "$lb_pid" >/dev/null
	"$build/ringlb-analyze" load --url "$url" --requests "$requests" \
		--concurrency "$conc" --json >"$work/load-$run.json"
	callgrind_control -i off "$lb_pid" >/dev/null
	kill -TERM "$lb_pid"
	wait "$lb_pid" || true
	lb_pid=
	python3 - "$work/load-$run.json" "$requests" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = r.get("errors", 0)
if bad:
    sys.exit("cost: %d of the requests failed: %s" % (bad, r))
PY
}

echo "cost: $runs runs of $requests requests, $conc at a time, under callgrind; files in $work" >&2
for r in $(seq 1 "$runs"); do
	measure "$r"
done
if [ -n "${COST_OUT:-}" ]; then
	mkdir -p "$COST_OUT"
	cp "$work"/callgrind.out.* "$COST_OUT"/
fi
python3 "$here/cost_report.py" "$requests" "$work"/callgrind.out.*
