# ports.sh - sourced by the bench scripts: a free loopback port, and a
# bounded wait for something to listen on one.  The caller sets $work (its
# temporary directory, named in the error) and $me (its name).

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
