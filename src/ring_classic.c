/*
 * ring_classic.c - RING_ALGO_CLASSIC, the classroom ring.
 *
 * 512 slots, 9 virtual servers per member at Phi(i, j) = i^2 + j^2 + 2j +
 * 25, requests at H(i) = i^2 + 2i + 17, collisions resolved by linear
 * probing.  Members are placed in order of (id, name) so placement is
 * independent of the order they were added.  With so few slots the ring
 * is rebuilt whole on every membership change.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ring.h"
#include "ring_impl.h"

#define CLASSIC_MEMBERS_MAX	(RING_CLASSIC_SLOTS / RING_CLASSIC_VNODES)

/* What the classic ring keeps of a member, at the member's index. */
struct classic_member {
	uint64_t	 id;	/* ring_classic_id(name): where it sits */
	uint64_t	 seed;	/* XXH3(name): who it is, for last_moved */
};

struct classic {
	/* slot -> member placed there, or -1 */
	int16_t			 slot[RING_CLASSIC_SLOTS];
	/* slot -> first occupied slot at or after it, or -1 when empty */
	int16_t			 next[RING_CLASSIC_SLOTS];
	size_t			 nslots;
	struct classic_member	 member[CLASSIC_MEMBERS_MAX];	/* by index */
};

uint32_t
ring_classic_request_slot(uint64_t i)
{
	uint64_t m = i % RING_CLASSIC_SLOTS;

	return (uint32_t)((m * m + 2 * m + 17) % RING_CLASSIC_SLOTS);
}

uint32_t
ring_classic_vnode_slot(uint64_t i, uint32_t j)
{
	uint64_t m = i % RING_CLASSIC_SLOTS;

	return (uint32_t)((m * m + (uint64_t)j * j + 2 * (uint64_t)j + 25) %
	    RING_CLASSIC_SLOTS);
}

/*
 * The classic formulas need integers.  A key that is a decimal number is
 * that number; a name uses its trailing number ("server-3" is 3), as the
 * assignment numbers its servers.  Anything else is hashed.
 */
uint64_t
ring_classic_id(const char *s, size_t len, int trailing)
{
	size_t start = len, k;
	uint64_t v = 0;

	while (start > 0 && s[start - 1] >= '0' && s[start - 1] <= '9')
		start--;
	if (start == len || len - start > 18 || (!trailing && start != 0))
		return XXH3_64bits(s, len);
	for (k = start; k < len; k++)
		v = v * 10 + (uint64_t)(s[k] - '0');
	return v;
}

int
ring_classic_slot_owner(const struct ring *r, unsigned slot)
{
	const struct classic *c = r->impl;

	if (r->ops != &ring_classic_ops || slot >= RING_CLASSIC_SLOTS)
		return -1;
	return c->slot[slot];
}

static uint32_t
classic_key_slot(const void *key, size_t len)
{
	return ring_classic_request_slot(ring_classic_id(key, len, 0));
}

/* qsort has no context argument in C11; the members being sorted are
 * carried in this file static for the length of one qsort call. */
static const struct ring_member *sort_members;
static const struct classic_member *sort_classic;

static int
classic_order_cmp(const void *a, const void *b)
{
	int ia = *(const int *)a, ib = *(const int *)b;

	if (sort_classic[ia].id != sort_classic[ib].id)
		return sort_classic[ia].id < sort_classic[ib].id ? -1 : 1;
	return strcmp(sort_members[ia].name, sort_members[ib].name);
}

/* Every slot again, from the first n members. */
static void
classic_rebuild(struct classic *c, const struct ring_member *members,
    int n)
{
	int order[CLASSIC_MEMBERS_MAX];
	int i, s, first;
	uint32_t j, slot;

	for (i = 0; i < n; i++)
		order[i] = i;
	sort_members = members;
	sort_classic = c->member;
	qsort(order, n, sizeof(order[0]), classic_order_cmp);
	sort_members = NULL;
	sort_classic = NULL;

	memset(c->slot, 0xff, sizeof(c->slot));
	c->nslots = 0;
	for (i = 0; i < n; i++)
		for (j = 0; j < RING_CLASSIC_VNODES; j++) {
			slot = ring_classic_vnode_slot(c->member[order[i]].id,
			    j);
			while (c->slot[slot] != -1)
				slot = (slot + 1) % RING_CLASSIC_SLOTS;
			c->slot[slot] = (int16_t)order[i];
			c->nslots++;
		}

	/* next[s]: first occupied slot clockwise from s, for O(1) lookup */
	memset(c->next, 0xff, sizeof(c->next));
	if (c->nslots == 0)
		return;
	for (first = 0; c->slot[first] == -1; first++)
		;
	c->next[first] = (int16_t)first;
	s = first;
	do {
		s = (s + RING_CLASSIC_SLOTS - 1) % RING_CLASSIC_SLOTS;
		c->next[s] = c->slot[s] != -1 ? (int16_t)s :
		    c->next[(s + 1) % RING_CLASSIC_SLOTS];
	} while (s != first);
}

/*
 * The owner of every request id of one period, by seed (0 for none), as
 * the slots stand, with c->member in the order the slots were built from.
 */
static void
classic_owner_seeds(const struct classic *c, uint64_t *out)
{
	size_t k;

	for (k = 0; k < RING_CLASSIC_SLOTS; k++)
		out[k] = c->nslots == 0 ? 0 : c->member[c->slot[c->next[
		    ring_classic_request_slot(k)]]].seed;
}

/* The share of one period's request ids whose owner is not the one in
 * before[]. */
static double
classic_moved(const struct classic *c, const uint64_t *before)
{
	uint64_t now[RING_CLASSIC_SLOTS];
	size_t k, moved = 0;

	classic_owner_seeds(c, now);
	for (k = 0; k < RING_CLASSIC_SLOTS; k++)
		moved += now[k] != before[k];
	return (double)moved / RING_CLASSIC_SLOTS;
}

static int
classic_init(struct ring *r)
{
	struct classic *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	memset(c->slot, 0xff, sizeof(c->slot));
	memset(c->next, 0xff, sizeof(c->next));
	r->impl = c;
	return 0;
}

static void
classic_free(void *impl)
{
	free(impl);
}

static void *
classic_clone(const struct ring *r)
{
	struct classic *c;

	if ((c = malloc(sizeof(*c))) != NULL)
		memcpy(c, r->impl, sizeof(*c));
	return c;
}

/* ring_add() refuses a member past ring_capacity(), so there is room. */
static int
classic_add(struct ring *r)
{
	struct classic *c = r->impl;
	const struct ring_member *m = &r->members[r->nmembers - 1];
	uint64_t before[RING_CLASSIC_SLOTS];

	classic_owner_seeds(c, before);
	c->member[r->nmembers - 1].id = ring_classic_id(m->name, m->namelen,
	    1);
	c->member[r->nmembers - 1].seed = XXH3_64bits(m->name, m->namelen);
	classic_rebuild(c, r->members, r->nmembers);
	r->last_moved = classic_moved(c, before);
	return 0;
}

static void
classic_remove(struct ring *r, int idx)
{
	struct classic *c = r->impl;
	uint64_t before[RING_CLASSIC_SLOTS];

	/* before idx leaves c->member, which the slots still index */
	classic_owner_seeds(c, before);
	memmove(&c->member[idx], &c->member[idx + 1],
	    (r->nmembers - idx) * sizeof(c->member[0]));
	classic_rebuild(c, r->members, r->nmembers);
	r->last_moved = classic_moved(c, before);
}

static int
classic_lookup(const struct ring *r, const void *key, size_t len)
{
	const struct classic *c = r->impl;

	return c->slot[c->next[classic_key_slot(key, len)]];
}

/* The members met walking the slots clockwise from key's. */
static int
classic_rank(const struct ring *r, const void *key, size_t len, int *out,
    int max)
{
	const struct classic *c = r->impl;
	size_t k, pos = (size_t)c->next[classic_key_slot(key, len)];
	int n = 0;

	for (k = 0; k < RING_CLASSIC_SLOTS && n < max; k++) {
		size_t s = (pos + k) % RING_CLASSIC_SLOTS;

		if (c->slot[s] != -1)
			n = ring_rank_add(out, n, c->slot[s]);
	}
	return n;
}

/* Request ids 0..511: H(i) repeats every 512 ids, so one period is
 * every id. */
static void
classic_shares(const struct ring *r, double *out)
{
	const struct classic *c = r->impl;
	size_t k;

	for (k = 0; k < RING_CLASSIC_SLOTS; k++)
		out[c->slot[c->next[ring_classic_request_slot(k)]]] +=
		    1.0 / RING_CLASSIC_SLOTS;
}

/* Its occupied slots. */
static size_t
classic_ticks(const struct ring *r, double *pos, int *member, size_t max)
{
	const struct classic *c = r->impl;
	size_t i, n = 0;

	for (i = 0; i < RING_CLASSIC_SLOTS && n < max; i++)
		if (c->slot[i] >= 0) {
			pos[n] = (double)i / RING_CLASSIC_SLOTS;
			member[n++] = c->slot[i];
		}
	return n;
}

static size_t
classic_points(const struct ring *r)
{
	return ((const struct classic *)r->impl)->nslots;
}

static size_t
classic_memory(const struct ring *r)
{
	(void)r;
	return sizeof(struct classic);
}

static double
classic_key_position(const void *key, size_t len)
{
	return (double)classic_key_slot(key, len) / RING_CLASSIC_SLOTS;
}

const struct ring_ops ring_classic_ops = {
	.init = classic_init,
	.free = classic_free,
	.clone = classic_clone,
	.add = classic_add,
	.remove = classic_remove,
	.lookup = classic_lookup,
	.rank = classic_rank,
	.shares = classic_shares,
	.ticks = classic_ticks,
	.points = classic_points,
	.memory = classic_memory,
	.key_position = classic_key_position,
};
