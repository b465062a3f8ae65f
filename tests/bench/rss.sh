#!/usr/bin/env bash
# ringlb's resident memory, idle, at each worker count of $RSS_WORKERS:
# what a worker (a thread with its own event loop, listener and pools)
# costs.  Three ringlb-replica processes on loopback serve as the replicas
# (static backend) for every count; at each, a fresh ringlb with
# RINGLB_WORKERS at that count serves $RSS_REQUESTS requests, 16
# connections at a time so that they spread over the workers' listeners,
# is left to settle, and its own VmRSS and RssAnon are read from
# /proc/PID/status (the replicas are other processes, not counted).
# RssAnon is the heap, the stacks and the other private memory: what each
# worker adds; VmRSS also counts the program's and the libraries' pages.
# Everything started here is stopped here, by pid.
#
#   usage: tests/bench/rss.sh BUILD_DIR
#   environment: RSS_WORKERS ("1 2 4"), RSS_REQUESTS (1000),
#                RSS_SETTLE seconds after the requests (3)
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
workers=${RSS_WORKERS:-1 2 4}
requests=${RSS_REQUESTS:-1000}
settle=${RSS_SETTLE:-3}
work=$(mktemp -d /tmp/ringlb-rss.XXXXXX)
pids=()
lb_pid=

for n in $workers; do
	case $n in
	''|*[!0-9]*|0*)	echo "rss: RSS_WORKERS: '$n' is not a count of workers" >&2
			exit 2 ;;
	esac
done

cleanup() {
	[ -n "$lb_pid" ] && kill "$lb_pid" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

me=rss
. "$here/ports.sh"

start_replicas

status_kb() {	# status_kb PID FIELD: a line of /proc/PID/status, in kB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

echo "rss: ringlb at RINGLB_WORKERS = $workers, $requests requests each, then ${settle}s idle; logs in $work" >&2
for n in $workers; do
	port=$(free_port)
	RINGLB_WORKERS=$n "$build/ringlb" --listen "127.0.0.1:$port" \
		--log-level warn \
		--replica "server-1=127.0.0.1:${backend_ports[0]}" \
		--replica "server-2=127.0.0.1:${backend_ports[1]}" \
		--replica "server-3=127.0.0.1:${backend_ports[2]}" \
		2>"$work/ringlb-$n.log" &
	lb_pid=$!
	wait_port "$port"
	sleep 1	# ringlb's first heartbeats admit the replicas
	"$build/ringlb-analyze" load --url "http://127.0.0.1:$port/home" \
		--requests "$requests" --concurrency 16 --json \
		>"$work/load-$n.json"
	python3 - "$work/load-$n.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if r.get("errors", 0):
    sys.exit("rss: %d of the requests failed: %s" % (r["errors"], r))
PY
	sleep "$settle"
	kill -0 "$lb_pid" 2>/dev/null || {
		echo "rss: ringlb exited; see $work/ringlb-$n.log" >&2
		exit 1
	}
	echo "$n $(status_kb "$lb_pid" Threads) $(status_kb "$lb_pid" VmRSS)" \
		"$(status_kb "$lb_pid" RssAnon)" >>"$work/rss.txt"
	kill -TERM "$lb_pid"
	wait "$lb_pid" || true
	lb_pid=
done

echo "ringlb idle after $requests requests, 3 replicas (static backend)"
echo
echo "| workers | threads | VmRSS kB | RssAnon kB | RssAnon added per worker over 1, kB |"
echo "|---:|---:|---:|---:|---:|"
sort -n "$work/rss.txt" | awk '
	$1 == 1 { base = $4 }
	{
		per = ($1 > 1 && base != "") ? sprintf("%.0f", ($4 - base) / ($1 - 1)) : "-"
		printf "| %d | %d | %d | %d | %s |\n", $1, $2, $3, $4, per
	}'
