/*
 * fuzz_ring.c - random add/remove/lookup sequences against the rings,
 * checked against a model: the members are exactly those added and not
 * removed, every lookup names one of them, successors are distinct and
 * start at the owner, and the final ring routes like one built afresh
 * from the same names in another order.  On the table ring one operation
 * adds BULK members at once and the next removes them, so that the ring
 * crosses 255 members and changes the width of its owners both ways
 * (seeds/ring/widen-narrow does both from the first run on).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define NAMES	32
#define BULK	250	/* names NAMES .. NAMES + BULK - 1, all at once */
#define MAXOPS	48

static void
check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "invariant broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum ring_algo algos[] = { RING_ALGO_TABLE,
	    RING_ALGO_HASH, RING_ALGO_CLASSIC };
	struct ring_config cfg;
	struct ring *r, *fresh;
	int present[NAMES + BULK] = { 0 }, count = 0, ops = 0, bulks = 0,
	    out[8], n, i, j, b;
	char name[16], err[128];
	size_t p = 1;

	if (size < 1)
		return 0;
	cfg.algo = algos[data[0] % 3];
	cfg.vnodes = 1 + (data[0] >> 2) % 64;
	if ((r = ring_new(&cfg)) == NULL)
		return 0;
	while (p + 1 < size && ops++ < MAXOPS) {
		uint8_t op = data[p] % 8, arg = data[p + 1];

		p += 2;
		snprintf(name, sizeof(name), "r-%u", arg % NAMES);
		if (op == 7 && arg < 8 && cfg.algo == RING_ALGO_TABLE &&
		    bulks++ < 2) {
			/* all the bulk names in, then all out from arg on;
			 * rare (arg < 8), as hundreds of changes are slow */
			int in = !present[NAMES];

			for (i = 0; i < BULK; i++) {
				b = NAMES + (i + arg) % BULK;
				snprintf(name, sizeof(name), "r-%d", b);
				check((in ? ring_add(r, name, NULL, err,
				    sizeof(err)) : ring_remove(r, name)) == 0,
				    "bulk change");
				present[b] = in;
				count += in ? 1 : -1;
			}
		} else if (op < 3) {
			int rc = ring_add(r, name, NULL, err, sizeof(err));

			check((rc == 0) == !present[arg % NAMES] ||
			    cfg.algo == RING_ALGO_CLASSIC, "add result");
			if (rc == 0) {
				present[arg % NAMES] = 1;
				count++;
			}
		} else if (op < 5) {
			int rc = ring_remove(r, name);

			check((rc == 0) == present[arg % NAMES], "remove result");
			if (rc == 0) {
				present[arg % NAMES] = 0;
				count--;
			}
		} else {
			size_t klen = (size - p) < 12 ? size - p : 12;

			n = ring_successors(r, data + p, klen, out, 8);
			check(n == (count < 8 ? count : 8), "successor count");
			if (n > 0)
				check(out[0] == ring_lookup(r, data + p, klen),
				    "first successor is the owner");
			for (i = 0; i < n; i++) {
				int k;

				check(sscanf(ring_member_name(r, out[i]), "r-%d",
				    &k) == 1 && present[k], "owner is a member");
				for (j = i + 1; j < n; j++)
					check(out[i] != out[j], "distinct");
			}
		}
		check(ring_count(r) == count, "member count");
	}
	/* the same members, added in reverse: the same routes */
	if ((fresh = ring_new(&cfg)) != NULL) {
		for (i = NAMES + BULK - 1; i >= 0; i--)
			if (present[i]) {
				snprintf(name, sizeof(name), "r-%d", i);
				ring_add(fresh, name, NULL, err, sizeof(err));
			}
		for (i = 0; i < 16; i++) {
			char key[8];
			int a, b;

			snprintf(key, sizeof(key), "%d", i * 7919);
			a = ring_lookup(r, key, strlen(key));
			b = ring_lookup(fresh, key, strlen(key));
			check((a == -1) == (b == -1), "both empty or not");
			if (a != -1)
				check(strcmp(ring_member_name(r, a),
				    ring_member_name(fresh, b)) == 0,
				    "order independence");
		}
		ring_free(fresh);
	}
	ring_free(r);
	return 0;
}
