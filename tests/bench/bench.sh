#!/usr/bin/env bash
# ringlb against nginx and HAProxy, each balancing by consistent hashing of
# request_id over the same 3 backends on loopback, at each worker count N
# of $WORKERS: ringlb with RINGLB_WORKERS=N (threads, each with its own
# event loop), nginx with worker_processes N, HAProxy with nbthread N.  Two
# scenarios, one after the other:
#
#   replica   the backends are ringlb-replica processes (what ringlb runs)
#   fast      the backends are one nginx answering the replicas' JSON on
#             three ports: faster than ringlb-replica, so that the
#             balancer's own cost is what the numbers show
#
# The backends are the same for every N.  All the balancers of a scenario
# run at once, idle but for the one under load, and the rounds are
# interleaved (for each N, ringlb, nginx, HAProxy; repeated), so that the
# machine's moods fall on every N alike and the scaling from 1 to N is
# measured within one run.  The medians are printed per N, with each
# balancer's requests/s at N over at 1 when 1 is among $WORKERS.
#
# wrk runs -tN (one thread per balancer worker) with the same $CONNS
# connections for all three balancers at a given N.  One wrk thread is one
# core's worth of load at most, so on a machine with cores to spare a
# single thread would cap the balancers with several workers.  On a
# two-core machine, where wrk, the balancer and the backends share the
# cores, wrk needed about half a core at N=2 with one thread or with two,
# and the two gave the same requests/s within the noise: there the cores,
# not wrk, are the limit.  The CPU time wrk used in each run is printed,
# against the threads it had, to show whether it was; WRK_THREADS sets the
# threads for every N instead.  Everything started here is stopped here,
# by pid; no system service is used.
#
#   usage: tests/bench/bench.sh BUILD_DIR
#   environment: ROUNDS (3), DURATION seconds per run (10), CONNS (64),
#                SCENARIOS ("replica fast"), WORKERS ("1 2"),
#                WRK_THREADS (N at each N)
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
conns=${CONNS:-64}
scenarios=${SCENARIOS:-replica fast}
workers=${WORKERS:-1 2}
for n in $workers; do
	case $n in
	''|*[!0-9]*|0*)	echo "bench: WORKERS: '$n' is not a count of workers" >&2
			exit 2 ;;
	esac
done
work=$(mktemp -d /tmp/ringlb-bench.XXXXXX)
pids=()
stage=()	# the pids of the scenario being run

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

start() {	# start COMMAND...: in the background, remembered
	"$@" &
	pids+=($!)
	stage+=($!)
}

stop_stage() {
	for p in "${stage[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${stage[@]}"; do wait "$p" 2>/dev/null || true; done
	stage=()
}

me=bench
. "$here/ports.sh"

# The top of an nginx.conf whose files live in $1: $2 workers (1 if not
# given), in the foreground, no system paths.
nginx_preamble() {
	cat <<NGX
worker_processes ${2:-1};
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
NGX
}

nginx_temp_paths() {	# the paths nginx would otherwise want under /var
	cat <<NGX
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
NGX
}

# --- backends --------------------------------------------------------------
backend_ports=()

replica_backends() {
	local i p
	backend_ports=()
	for i in 1 2 3; do
		p=$(free_port)
		start "$build/ringlb-replica" --id "server-$i" \
			--listen "127.0.0.1:$p" 2>"$dir/replica-$i.log"
		backend_ports+=("$p")
	done
}

# One nginx worker answering what ringlb-replica answers, on three ports.
fast_backends() {
	local i p servers=""
	backend_ports=()
	mkdir -p "$dir/backends"
	for i in 1 2 3; do
		p=$(free_port)
		backend_ports+=("$p")
		servers="$servers
    server {
        listen 127.0.0.1:$p;
        default_type application/json;
        location = /heartbeat { return 200; }
        location / {
            return 200 '{\"message\":\"Hello from Server: server-$i\",\"status\":\"successful\"}\n';
        }
    }"
	done
	cat >"$dir/backends/nginx.conf" <<NGX
$(nginx_preamble "$dir/backends")
http {
    access_log off;
    keepalive_requests 1000000;
$(nginx_temp_paths "$dir/backends")
$servers
}
NGX
	start /usr/sbin/nginx -p "$dir/backends" -c "$dir/backends/nginx.conf"
}

# --- balancers ---------------------------------------------------------------
# Each start_LB N starts that balancer with N workers and sets port[LB-N]
# (and, for ringlb, ringlb_pid[N]).
declare -A port ringlb_pid

start_ringlb() {
	local n=$1 p
	p=$(free_port)
	port[ringlb-$n]=$p
	RINGLB_WORKERS=$n start "$build/ringlb" --listen "127.0.0.1:$p" \
		--log-level warn \
		--replica "server-1=127.0.0.1:${backend_ports[0]}" \
		--replica "server-2=127.0.0.1:${backend_ports[1]}" \
		--replica "server-3=127.0.0.1:${backend_ports[2]}" \
		2>"$dir/ringlb-$n.log"
	ringlb_pid[$n]=$!
}

start_nginx() {
	local n=$1 d="$dir/nginx-$1" p
	p=$(free_port)
	port[nginx-$n]=$p
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<NGX
$(nginx_preamble "$d" "$n")
http {
    access_log off;
$(nginx_temp_paths "$d")
    keepalive_requests 1000000;
    upstream replicas {
        hash \$arg_request_id consistent;
        server 127.0.0.1:${backend_ports[0]};
        server 127.0.0.1:${backend_ports[1]};
        server 127.0.0.1:${backend_ports[2]};
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$p;
        location / {
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGX
	start /usr/sbin/nginx -p "$d" -c "$d/nginx.conf"
}

start_haproxy() {
	local n=$1 p
	p=$(free_port)
	port[haproxy-$n]=$p
	cat >"$dir/haproxy-$n.cfg" <<HAP
global
    nbthread $n
    maxconn 4000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:$p
    default_backend replicas
backend replicas
    balance url_param request_id
    hash-type consistent
    server s1 127.0.0.1:${backend_ports[0]}
    server s2 127.0.0.1:${backend_ports[1]}
    server s3 127.0.0.1:${backend_ports[2]}
HAP
	start /usr/sbin/haproxy -f "$dir/haproxy-$n.cfg" -db 2>"$dir/haproxy-$n.log"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

threads_for() { echo "${WRK_THREADS:-$1}"; }

# wrk_run OUT THREADS CONNS SECONDS URL: wrk with random request ids, its
# report in OUT and the CPU seconds it used (user + system) in OUT.cpu
wrk_run() {
	local TIMEFORMAT='%U %S'
	{ time wrk -t"$2" -c"$3" -d"$4s" --latency -s "$here/random-id.lua" \
		"$5" >"$1" 2>"$1.err"; } 2>"$1.time"
	awk '{ print $1 + $2 }' "$1.time" >"$1.cpu"
}

# One line on stderr for a run: its requests/s, the answers that were not
# 2xx or 3xx, socket errors and the CPU wrk used
run_line() {
	local f=$1 rps bad errs
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
	bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$f")
	errs=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1+\2+\3+\4/p' "$f")
	printf '%s req/s, non-2xx %s, socket errors %s, wrk CPU %.0f%%\n' \
		"${rps:-?}" "${bad:-0}" "$(( ${errs:-0} ))" \
		"$(awk -v d="$duration" '{ print 100 * $1 / d }' "$f.cpu")"
}

# --- scenarios ---------------------------------------------------------------
for scenario in $scenarios; do
	dir="$work/$scenario"
	mkdir -p "$dir"
	case $scenario in
	replica)	replica_backends
			label="3 ringlb-replica backends" ;;
	fast)		fast_backends
			label="fast backends: one nginx worker answering the replicas' JSON on 3 ports" ;;
	*)		echo "bench: no scenario '$scenario' (replica, fast)" >&2
			exit 2 ;;
	esac
	for p in "${backend_ports[@]}"; do wait_port "$p"; done
	for n in $workers; do
		start_ringlb "$n"
		start_nginx "$n"
		start_haproxy "$n"
	done
	for n in $workers; do
		for lb in ringlb nginx haproxy; do wait_port "${port[$lb-$n]}"; done
	done
	sleep 1	# ringlb's first heartbeats admit the replicas
	for n in $workers; do
		rss_kb "${ringlb_pid[$n]}" >"$dir/rss-idle-$n"
	done

	echo "bench: $scenario: $rounds rounds of wrk -t${WRK_THREADS:-N} -c$conns -d${duration}s at N = $workers, logs in $dir" >&2
	for r in $(seq 1 "$rounds"); do
		for n in $workers; do
			for lb in ringlb nginx haproxy; do
				f="$dir/$lb-$n-$r.txt"
				wrk_run "$f" "$(threads_for "$n")" "$conns" \
					"$duration" "http://127.0.0.1:${port[$lb-$n]}/"
				echo "bench: $scenario round $r N=$n $lb: $(run_line "$f")" >&2
			done
		done
	done

	if [ "$scenario" = replica ]; then
		# ringlb under 1,000 concurrent client connections
		for n in $workers; do
			wrk -t"$(threads_for "$n")" -c1000 -d5s \
				-s "$here/random-id.lua" \
				"http://127.0.0.1:${port[ringlb-$n]}/" \
				>"$dir/ringlb-$n-c1000.txt" &
			wrk_pid=$!
			sleep 4
			rss_kb "${ringlb_pid[$n]}" >"$dir/rss-busy-$n"
			wait "$wrk_pid"
		done
	fi
	stop_stage

	echo
	echo "### $label"
	echo
	python3 "$here/summarize.py" "$dir" "$rounds" "$conns" "$duration" \
		"$workers" "${WRK_THREADS:-}"
done
