#!/usr/bin/env bash
# ringlb against nginx and HAProxy, each balancing by consistent hashing of
# request_id over the same 3 ringlb-replica backends on loopback, each with
# one worker process or thread.  Rounds are interleaved (ringlb, nginx,
# HAProxy, repeated) and the medians printed.  Everything started here is
# stopped here, by pid; no system service is used.
#
#   usage: tests/bench/bench.sh BUILD_DIR
#   environment: ROUNDS (3), DURATION seconds per run (10), CONNS (64)
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
conns=${CONNS:-64}
work=$(mktemp -d /tmp/ringlb-bench.XXXXXX)
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
	for _ in $(seq 1 200); do
		if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "bench: nothing listens on port $1; logs in $work" >&2
	exit 1
}

# --- backends --------------------------------------------------------------
backend_ports=()
for i in 1 2 3; do
	p=$(free_port)
	"$build/ringlb-replica" --id "server-$i" --listen "127.0.0.1:$p" 2>"$work/replica-$i.log" &
	pids+=($!)
	backend_ports+=("$p")
done
for p in "${backend_ports[@]}"; do wait_port "$p"; done

# --- ringlb -----------------------------------------------------------------
ringlb_port=$(free_port)
"$build/ringlb" --listen "127.0.0.1:$ringlb_port" --log-level warn \
	--replica "server-1=127.0.0.1:${backend_ports[0]}" \
	--replica "server-2=127.0.0.1:${backend_ports[1]}" \
	--replica "server-3=127.0.0.1:${backend_ports[2]}" 2>"$work/ringlb.log" &
ringlb_pid=$!
pids+=("$ringlb_pid")

# --- nginx ------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
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
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)

# --- HAProxy ----------------------------------------------------------------
haproxy_port=$(free_port)
cat >"$work/haproxy.cfg" <<HAP
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
/usr/sbin/haproxy -f "$work/haproxy.cfg" -db 2>"$work/haproxy.log" &
pids+=($!)

for p in "$ringlb_port" "$nginx_port" "$haproxy_port"; do wait_port "$p"; done
sleep 1	# ringlb's first heartbeats admit the replicas

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
idle_rss=$(rss_kb "$ringlb_pid")

# --- rounds -----------------------------------------------------------------
echo "bench: $rounds rounds of wrk -t1 -c$conns -d${duration}s, logs in $work" >&2
for r in $(seq 1 "$rounds"); do
	for lb in ringlb nginx haproxy; do
		port_var="${lb}_port"
		wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$here/random-id.lua" \
			"http://127.0.0.1:${!port_var}/" >"$work/$lb-$r.txt"
		echo "bench: round $r $lb: $(grep Requests/sec "$work/$lb-$r.txt")" >&2
	done
done

# ringlb under 1,000 concurrent client connections
wrk -t1 -c1000 -d5s -s "$here/random-id.lua" "http://127.0.0.1:$ringlb_port/" \
	>"$work/ringlb-c1000.txt" &
wrk_pid=$!
sleep 4
busy_rss=$(rss_kb "$ringlb_pid")
wait "$wrk_pid"

python3 "$here/summarize.py" "$work" "$rounds" "$idle_rss" "$busy_rss" "$conns" "$duration"
