#!/usr/bin/env bash
# ringlb against nginx and HAProxy, each balancing by consistent hashing of
# request_id over the same 3 backends on loopback, each with one worker
# process or thread.  Two scenarios, one after the other:
#
#   replica   the backends are ringlb-replica processes (what ringlb runs)
#   fast      the backends are one nginx answering the replicas' JSON on
#             three ports: faster than ringlb-replica, so that the
#             balancer's own cost is what the numbers show
#
# Rounds are interleaved (ringlb, nginx, HAProxy, repeated) and the medians
# printed.  Everything started here is stopped here, by pid; no system
# service is used.
#
#   usage: tests/bench/bench.sh BUILD_DIR
#   environment: ROUNDS (3), DURATION seconds per run (10), CONNS (64),
#                SCENARIOS ("replica fast")
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
conns=${CONNS:-64}
scenarios=${SCENARIOS:-replica fast}
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

# The top of an nginx.conf whose files live in $1: one worker, in the
# foreground, no system paths.
nginx_preamble() {
	cat <<NGX
worker_processes 1;
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
start_ringlb() {
	ringlb_port=$(free_port)
	start "$build/ringlb" --listen "127.0.0.1:$ringlb_port" --log-level warn \
		--replica "server-1=127.0.0.1:${backend_ports[0]}" \
		--replica "server-2=127.0.0.1:${backend_ports[1]}" \
		--replica "server-3=127.0.0.1:${backend_ports[2]}" 2>"$dir/ringlb.log"
	ringlb_pid=$!
}

start_nginx() {
	nginx_port=$(free_port)
	mkdir -p "$dir/nginx"
	cat >"$dir/nginx/nginx.conf" <<NGX
$(nginx_preamble "$dir/nginx")
http {
    access_log off;
$(nginx_temp_paths "$dir/nginx")
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
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGX
	start /usr/sbin/nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf"
}

start_haproxy() {
	haproxy_port=$(free_port)
	cat >"$dir/haproxy.cfg" <<HAP
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:$haproxy_port
    default_backend replicas
backend replicas
    balance url_param request_id
    hash-type consistent
    server s1 127.0.0.1:${backend_ports[0]}
    server s2 127.0.0.1:${backend_ports[1]}
    server s3 127.0.0.1:${backend_ports[2]}
HAP
	start /usr/sbin/haproxy -f "$dir/haproxy.cfg" -db 2>"$dir/haproxy.log"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

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
	start_ringlb
	start_nginx
	start_haproxy
	for p in "$ringlb_port" "$nginx_port" "$haproxy_port"; do
		wait_port "$p"
	done
	sleep 1	# ringlb's first heartbeats admit the replicas
	idle_rss=$(rss_kb "$ringlb_pid")

	echo "bench: $scenario: $rounds rounds of wrk -t1 -c$conns -d${duration}s, logs in $dir" >&2
	for r in $(seq 1 "$rounds"); do
		for lb in ringlb nginx haproxy; do
			port_var="${lb}_port"
			wrk -t1 -c"$conns" -d"${duration}s" --latency \
				-s "$here/random-id.lua" \
				"http://127.0.0.1:${!port_var}/" >"$dir/$lb-$r.txt"
			echo "bench: $scenario round $r $lb: $(grep Requests/sec "$dir/$lb-$r.txt")" >&2
		done
	done

	busy_rss=""
	if [ "$scenario" = replica ]; then
		# ringlb under 1,000 concurrent client connections
		wrk -t1 -c1000 -d5s -s "$here/random-id.lua" \
			"http://127.0.0.1:$ringlb_port/" >"$dir/ringlb-c1000.txt" &
		wrk_pid=$!
		sleep 4
		busy_rss=$(rss_kb "$ringlb_pid")
		wait "$wrk_pid"
	fi
	stop_stage

	echo
	echo "### $label"
	echo
	python3 "$here/summarize.py" "$dir" "$rounds" "$idle_rss" "$busy_rss" \
		"$conns" "$duration"
done
