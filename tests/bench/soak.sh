#!/usr/bin/env bash
# Load and faults together: wrk at high concurrency against ringlb for
# SOAK_SECONDS while replicas are added, removed and killed; then ringlb's
# open descriptors and memory must be back where they were, and no request
# may have failed.  Loopback only; everything started here is stopped here,
# by pid.
#
#   usage: tests/bench/soak.sh BUILD_DIR      environment: SOAK_SECONDS (60)
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
seconds=${SOAK_SECONDS:-60}
work=$(mktemp -d /tmp/ringlb-soak.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

"$build/ringlb" --listen "127.0.0.1:$port" --replicas 3 --log-level warn \
	2>"$work/ringlb.log" &
lb=$!
wrk_pid=
cleanup() {
	[ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null || true
	kill "$lb" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 100); do
	curl -sf "$url/heartbeat" >/dev/null 2>&1 && break
	sleep 0.1
done
fds() { ls "/proc/$lb/fd" | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$lb/status"; }
children() { cat "/proc/$lb/task/$lb/children"; }

# warm up: connection pools and allocator arenas at their working size
wrk -t1 -c256 -d3s -s "$here/random-id.lua" "$url/" >/dev/null
sleep 1
fds0=$(fds)
rss0=$(rss)

wrk -t1 -c256 -d"${seconds}s" -s "$here/random-id.lua" "$url/" >"$work/wrk.txt" &
wrk_pid=$!
end=$((SECONDS + seconds - 2))
step=0
while [ "$SECONDS" -lt "$end" ]; do
	sleep 1
	n=$(curl -s "$url/rep" | python3 -c 'import json,sys; print(json.load(sys.stdin)["message"]["N"])')
	case $((step % 3)) in
	0)	[ "$n" -lt 6 ] && curl -s -X POST "$url/add" -d '{"n": 1}' >/dev/null ;;
	1)	[ "$n" -gt 3 ] && curl -s -X DELETE "$url/rm" -d '{"n": 1}' >/dev/null ;;
	2)	victim=$(children | tr ' ' '\n' | grep -v '^$' | shuf -n 1)
		[ -n "$victim" ] && kill -9 "$victim" 2>/dev/null ;;
	esac
	step=$((step + 1))
done
wait "$wrk_pid"
wrk_pid=
sleep 5		# kills healed, removed replicas stopped, idle pools settled
fds1=$(fds)
rss1=$(rss)

requests=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")
bad=$(awk -F': ' '/Non-2xx/ { print $2 }' "$work/wrk.txt")
errors=$(awk '/Socket errors/' "$work/wrk.txt")
echo "soak: ${seconds} s, $requests requests, $step changes (add, remove, kill -9 in turn)"
echo "soak: non-2xx ${bad:-0}; ${errors:-no socket errors}"
echo "soak: open fds $fds0 -> $fds1, RSS $rss0 -> $rss1 KiB"
status=0
[ -z "$bad" ] || { echo "soak: FAILED: requests failed"; status=1; }
[ "$fds1" -le $((fds0 + 4)) ] || { echo "soak: FAILED: descriptors grew"; status=1; }
[ "$rss1" -le $((rss0 + rss0 / 10 + 2048)) ] || { echo "soak: FAILED: memory grew"; status=1; }
[ "$status" -eq 0 ] && echo "soak: passed"
exit "$status"
