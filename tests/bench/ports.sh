# ports.sh - sourced by the bench scripts: a free loopback port, a
# bounded wait for something to listen on one, and three ringlb-replica
# backends.  The caller sets $work (its temporary directory, named in the
# error), $me (its name), $build and the array pids.

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
	for _ in $(seq 1 200); do
		if python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "$me: nothing listens on port $1; logs in $work" >&2
	exit 1
}

# Three ringlb-replica processes on free ports, remembered in pids; their
# ports in backend_ports, once each listens.
start_replicas() {
	local i p
	backend_ports=()
	for i in 1 2 3; do
		p=$(free_port)
		"$build/ringlb-replica" --id "server-$i" --listen "127.0.0.1:$p" \
			2>"$work/replica-$i.log" &
		pids+=($!)
		backend_ports+=("$p")
	done
	for p in "${backend_ports[@]}"; do wait_port "$p"; done
}
