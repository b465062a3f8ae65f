#!/bin/sh
# Stands in for ringlb-replica (--replica-bin) in tests.  Replicas whose id
# starts with "boom" fail to start; "slow" ones take 0.7 s to start; the
# rest run the real replica ($REPLICA_REAL_BIN) in this same process.
id=""
prev=""
for a in "$@"; do
	[ "$prev" = "--id" ] && id=$a
	prev=$a
done
case "$id" in
boom*)	echo "replica-wrapper: $id refuses to start" >&2; exit 1 ;;
slow*)	sleep 0.7 ;;
esac
exec "$REPLICA_REAL_BIN" "$@"
