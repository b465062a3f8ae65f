#!/bin/sh
# make logs: ringlb's log (docker-compose logs -f) and, beside it, the log
# of each of its replica containers, every line labelled with the
# replica's name; a replica container that starts later is followed from
# its start.  Until Ctrl-C, or until docker-compose logs -f ends.
#
#   usage: docker/logs.sh OWNER COMPOSE-LOGS-COMMAND...
#   e.g.   docker/logs.sh ringlb env RINGLB_NETWORK=net1 docker-compose logs -f
#
# The replicas' followers run in a session of their own, so that they can
# all be stopped at once (docker logs -f, docker events and their sed), on
# Ctrl-C as when docker-compose logs -f ends.
if [ "$1" = --replicas ]; then
	owner=$2
	follow() {
		docker logs -f "$1" 2>&1 |
			sed -u "s/^/$(printf '%-12s' "$2" | sed 's/[\/&]/\\&/g')| /" &
	}
	docker ps --filter "label=ringlb.owner=$owner" \
		--format '{{.ID}} {{.Label "ringlb.replica"}}' |
		while read -r id name; do follow "$id" "$name"; done
	docker events --filter "label=ringlb.owner=$owner" --filter event=start \
		--format '{{.ID}} {{index .Actor.Attributes "ringlb.replica"}}' |
		while read -r id name; do follow "$id" "$name"; done
	exit 0
fi

owner=$1
shift
setsid sh "$0" --replicas "$owner" &
followers=$!
# Ctrl-C is how make logs ends: not an error of its own
trap 'kill -TERM -$followers 2>/dev/null; exit 0' INT TERM
"$@"
kill -TERM -$followers 2>/dev/null
exit 0
