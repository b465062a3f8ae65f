#!/bin/sh
# make swarm-up / swarm-down: ringlb's stack (docker/stack.yml) on Docker
# Swarm, and everything it needs around it.
#
#   swarm.sh up     a one-node swarm if the engine is in none (on
#                   127.0.0.1, marked as made here), the admin token
#                   secret, the overlay network, then the stack; waits
#                   until both balancers answer
#   swarm.sh down   the stack, the replica services, the network and the
#                   secret of RINGLB_STACK, all by name or label; leaves
#                   the swarm only if `up` made it and no other service
#                   runs in it
#
# RINGLB_ADMIN_TOKEN is the token; without it `up` makes one and keeps it
# in build/swarm-admin-token (mode 0600), and says so.
set -eu

stack=${RINGLB_STACK:-ringlb}
network=${RINGLB_SWARM_NETWORK:-ringlb-swarm}
secret=$stack-admin-token
port1=${RINGLB_PORT:-5000}
port2=${RINGLB_PORT_2:-5001}
mark=ringlb.made-swarm
tokenfile=build/swarm-admin-token

say() { echo "swarm: $*"; }

swarm_state() {
	docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null
}

up() {
	case $(swarm_state) in
	active) ;;
	inactive)
		say "the engine is in no swarm: making a one-node swarm on 127.0.0.1"
		docker swarm init --advertise-addr 127.0.0.1 \
			--listen-addr 127.0.0.1:2377 >/dev/null
		docker node update --label-add "$mark=1" \
			"$(docker info --format '{{.Swarm.NodeID}}')" >/dev/null ;;
	*)	say "the engine's swarm state is '$(swarm_state)': fix it first (docker info)"
		exit 1 ;;
	esac
	if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
		say "this engine is a swarm worker: run make swarm-up on a manager"
		exit 1
	fi
	if ! docker secret inspect "$secret" >/dev/null 2>&1; then
		token=${RINGLB_ADMIN_TOKEN:-}
		if [ -z "$token" ]; then
			mkdir -p build
			(umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' \
				>"$tokenfile")
			token=$(cat "$tokenfile")
			say "no RINGLB_ADMIN_TOKEN given: made one, kept in $tokenfile"
			say "admin token: $token"
		fi
		printf '%s' "$token" | docker secret create \
			--label "ringlb.owner=$stack" "$secret" - >/dev/null
		say "the admin token is the Docker secret $secret"
	elif [ -n "${RINGLB_ADMIN_TOKEN:-}" ]; then
		say "the secret $secret exists already and is kept (a secret cannot change under a running stack: make swarm-down first to change it)"
	fi
	if ! docker network inspect "$network" >/dev/null 2>&1; then
		docker network create --driver overlay --attachable \
			--label "ringlb.owner=$stack" "$network" >/dev/null
		say "made the overlay network $network"
	fi
	RINGLB_STACK=$stack RINGLB_SWARM_NETWORK=$network RINGLB_PORT=$port1 \
	RINGLB_PORT_2=$port2 docker stack deploy --prune \
		-c docker/stack.yml "$stack"
	say "waiting for the balancers on 127.0.0.1:$port1 and 127.0.0.1:$port2"
	for port in $port1 $port2; do
		i=0
		until curl -fsS -o /dev/null "http://127.0.0.1:$port/heartbeat" \
			2>/dev/null; do
			i=$((i + 1))
			if [ $i -ge 120 ]; then
				say "no balancer answers on 127.0.0.1:$port after 60 s; see docker service logs ${stack}_lb1"
				exit 1
			fi
			sleep 0.5
		done
	done
	say "up: http://127.0.0.1:$port1 and http://127.0.0.1:$port2 ($(curl -fsS "http://127.0.0.1:$port1/rep"))"
}

down() {
	if [ "$(swarm_state)" != active ]; then
		say "the engine is in no swarm: nothing to take down"
		exit 0
	fi
	if docker stack ls --format '{{.Name}}' | grep -qx "$stack"; then
		docker stack rm "$stack" >/dev/null
		say "removed the stack $stack"
	fi
	# the balancers leave their replicas to each other: they go here
	ids=$(docker service ls -q --filter "label=ringlb.owner=$stack")
	if [ -n "$ids" ]; then
		docker service rm $ids >/dev/null
		say "removed $(echo $ids | wc -w) replica service(s)"
	fi
	# their tasks' containers, then the network they were on
	i=0
	while [ -n "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")$(docker ps -aq --filter "label=ringlb.owner=$stack")" ] && [ $i -lt 60 ]; do
		sleep 0.5
		i=$((i + 1))
	done
	if [ "$(docker network inspect -f '{{index .Labels "ringlb.owner"}}' "$network" 2>/dev/null)" = "$stack" ]; then
		i=0
		until docker network rm "$network" >/dev/null 2>&1; do
			i=$((i + 1))
			if [ $i -ge 30 ]; then
				say "cannot remove the network $network: docker network inspect $network"
				exit 1
			fi
			sleep 1
		done
		say "removed the network $network"
	fi
	if docker secret inspect "$secret" >/dev/null 2>&1; then
		docker secret rm "$secret" >/dev/null
		say "removed the secret $secret"
	fi
	if [ "$(docker node inspect self --format "{{index .Spec.Labels \"$mark\"}}" 2>/dev/null)" = 1 ]; then
		others=$(docker service ls -q | wc -l)
		if [ "$others" -gt 0 ]; then
			say "the swarm make swarm-up made stays: $others other service(s) run in it (another stack's)"
		else
			docker swarm leave --force >/dev/null
			docker network rm docker_gwbridge >/dev/null 2>&1 || true
			say "left the swarm make swarm-up had made"
		fi
	fi
}

case "${1:-}" in
up)	up ;;
down)	down ;;
*)	echo "usage: $0 up|down" >&2; exit 2 ;;
esac
