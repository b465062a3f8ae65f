/*
 * ring_table.c - RING_ALGO_TABLE, the default ring: rendezvous hashing
 * per arc.
 *
 * The key space is divided into 2^21 equal arcs, and each arc goes to the
 * member with the highest score mix(XXH3(name) ^ arc) - rendezvous
 * (highest random weight) hashing per arc.  A lookup is one array read.
 * Because every arc ranks all members independently, adding a member
 * moves only the arcs it now wins, and removing one moves only its own
 * arcs, to their second choice; with 2^21 arcs every member's share is
 * within about 1% of the mean up to 64 members.  The table is updated in
 * place: an add scores every arc for the newcomer and for the arc's owner,
 * a remove re-ranks only the arcs the member held.  It keeps only what a
 * lookup needs, the owner of each arc: one byte per arc up to 255 members
 * (2 MiB), two above; scores are recomputed when a member changes rather
 * than stored.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ring.h"
#include "ring_impl.h"

#define TABLE_SLOTS8	255	/* slots a one-byte table holds, 0..254 */
#define TABLE_NONE8	0xff	/* the owner of no arc, one-byte table */
#define TABLE_NONE16	0xffff	/* the same, two-byte table */

struct table {
	/*
	 * arc -> slot of its owner, in owner8 while every slot fits in a
	 * byte (at most 255 members), else in owner16; the other is NULL.
	 * Slots stay put while member indices shift, so a removal touches
	 * only the arcs that change hands.
	 */
	uint8_t			*owner8;
	uint16_t		*owner16;
	uint16_t		 slot_member[RING_MEMBERS_MAX];	/* slot -> idx */
	uint16_t		 member_slot[RING_MEMBERS_MAX];	/* idx -> slot */
	/* a member's key, XXH3(name) >> 32, that scores it: by slot for
	 * the sweeps over arcs, by index for rankings over members */
	uint32_t		 slot_key[RING_MEMBERS_MAX];
	uint32_t		 member_key[RING_MEMBERS_MAX];
	uint8_t			 slot_used[RING_MEMBERS_MAX];
	int			 key_ties;	/* pairs of members, same key */
};

/*
 * Member m's score on arc a is fmix32(a * ARC_SPREAD ^ key32(m)), with
 * MurmurHash3's 32-bit finalizer.  The finalizer is a bijection, so two
 * members with different keys never tie on an arc; two names whose keys
 * collide (one chance in 2^32 per pair) are told apart by name.  It is
 * all 32-bit arithmetic so that the loops over 2^21 arcs below vectorize.
 */
#define ARC_SPREAD	0x9E3779B1u	/* odd: spreads an arc's bits */

static inline uint32_t
score_of(uint32_t key32, uint32_t a)
{
	uint32_t x = (a * ARC_SPREAD) ^ key32;

	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return x;
}

/* Does member a with score sa win over member b with score sb? */
static inline int
table_beats(const struct ring_member *a, uint32_t sa,
    const struct ring_member *b, uint32_t sb)
{
	return sa > sb || (sa == sb && strcmp(a->name, b->name) < 0);
}

static inline uint32_t
table_arc(const void *key, size_t len)
{
	return (uint32_t)(XXH3_64bits(key, len) >> (64 - RING_TABLE_BITS));
}

/* The best member for arc a, or -1 if none; its score in *best_s. */
static int
table_best(const struct ring *r, uint32_t a, uint32_t *best_s)
{
	const struct table *t = r->impl;
	uint32_t sc;
	int j, best = -1;

	*best_s = 0;
	for (j = 0; j < r->nmembers; j++) {
		sc = score_of(t->member_key[j], a);
		/* the name decides only an exact tie, which is rare */
		if (best == -1 || sc > *best_s || (sc == *best_s &&
		    table_beats(&r->members[j], sc, &r->members[best],
		    *best_s))) {
			best = j;
			*best_s = sc;
		}
	}
	return best;
}

/* How many of the first n members have key32 as their key. */
static int
table_key_count(const struct table *t, int n, uint32_t key32)
{
	int j, k = 0;

	for (j = 0; j < n; j++)
		k += t->member_key[j] == key32;
	return k;
}

/*
 * The two loops that run over every arc on a membership change.  They are
 * written to vectorize (no branch on who wins an arc, 32-bit lanes) and
 * built for AVX2 as well as the baseline, the better picked at run time
 * (not under ThreadSanitizer, whose runtime is not up yet when the
 * loader runs the picker).
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__)
#define TABLE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TABLE_CLONES
#endif

/*
 * Give arc a to slot sl where key32 scores higher than the arc's owner,
 * whose key is slot_key[owner[a]]; count the arcs taken.  One loop for
 * each width of the table.
 */
TABLE_CLONES static size_t
table_sweep8(uint8_t *restrict owner, const uint32_t *restrict slot_key,
    uint32_t key32, uint8_t sl)
{
	size_t moved = 0;
	uint32_t a;

	for (a = 0; a < RING_TABLE_SIZE; a++) {
		uint32_t o = owner[a];
		uint32_t win = score_of(key32, a) > score_of(slot_key[o], a);

		owner[a] = win ? sl : o;
		moved += win;
	}
	return moved;
}

TABLE_CLONES static size_t
table_sweep16(uint16_t *restrict owner, const uint32_t *restrict slot_key,
    uint32_t key32, uint16_t sl)
{
	size_t moved = 0;
	uint32_t a;

	for (a = 0; a < RING_TABLE_SIZE; a++) {
		uint32_t o = owner[a];
		uint32_t win = score_of(key32, a) > score_of(slot_key[o], a);

		owner[a] = win ? sl : o;
		moved += win;
	}
	return moved;
}

#define RANK_CHUNK	4096	/* arcs re-ranked together on a removal */

/*
 * Rank the k arcs in arcs[] over the n members (keys[], slots[]): the
 * best slot of each into best[]; top[] is scratch for the best scores.
 */
TABLE_CLONES static void
table_rank(const uint32_t *restrict arcs, size_t k,
    const uint32_t *restrict keys, const uint32_t *restrict slots, int n,
    uint32_t *restrict top, uint32_t *restrict best)
{
	size_t i;
	int j;

	for (i = 0; i < k; i++) {
		top[i] = score_of(keys[0], arcs[i]);
		best[i] = slots[0];
	}
	for (j = 1; j < n; j++) {
		uint32_t key = keys[j], slot = slots[j];

		for (i = 0; i < k; i++) {
			uint32_t sc = score_of(key, arcs[i]);
			uint32_t t = top[i], b = best[i];

			top[i] = sc > t ? sc : t;
			best[i] = sc > t ? slot : b;
		}
	}
}

static inline unsigned
table_owner(const struct table *t, uint32_t a)
{
	return t->owner16 != NULL ? t->owner16[a] : t->owner8[a];
}

static inline void
table_set_owner(struct table *t, uint32_t a, unsigned sl)
{
	if (t->owner16 != NULL)
		t->owner16[a] = (uint16_t)sl;
	else
		t->owner8[a] = (uint8_t)sl;
}

/* A 256th member needs two bytes per arc; -1 when there is no memory,
 * and the table unchanged. */
static int
table_widen(struct table *t)
{
	uint16_t *wide;
	uint32_t a;

	if ((wide = malloc(RING_TABLE_SIZE * sizeof(*wide))) == NULL)
		return -1;
	for (a = 0; a < RING_TABLE_SIZE; a++)
		wide[a] = t->owner8[a];
	free(t->owner8);
	t->owner8 = NULL;
	t->owner16 = wide;
	return 0;
}

/*
 * Back to one byte per arc once at most 255 members are left: member j
 * moves to slot j, so that every slot fits in a byte.  Without memory
 * for the narrow table the wide one stays, which is only bigger.
 */
static void
table_narrow(struct ring *r)
{
	struct table *t = r->impl;
	uint8_t *narrow, remap[RING_MEMBERS_MAX];
	uint32_t a;
	int j;

	if (t->owner16 == NULL || r->nmembers > TABLE_SLOTS8 ||
	    (narrow = malloc(RING_TABLE_SIZE * sizeof(*narrow))) == NULL)
		return;
	memset(remap, TABLE_NONE8, sizeof(remap));
	for (j = 0; j < r->nmembers; j++)
		remap[t->member_slot[j]] = (uint8_t)j;
	for (a = 0; a < RING_TABLE_SIZE; a++)
		narrow[a] = t->owner16[a] == TABLE_NONE16 ? TABLE_NONE8 :
		    remap[t->owner16[a]];
	memset(t->slot_used, 0, sizeof(t->slot_used));
	for (j = 0; j < r->nmembers; j++) {
		t->member_slot[j] = (uint16_t)j;
		t->slot_used[j] = 1;
		t->slot_member[j] = (uint16_t)j;
		t->slot_key[j] = t->member_key[j];
	}
	free(t->owner16);
	t->owner16 = NULL;
	t->owner8 = narrow;
}

static int
table_init(struct ring *r)
{
	struct table *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	/* no arc is read before the first member takes them all: the
	 * pages stay untouched until then */
	if ((t->owner8 = calloc(RING_TABLE_SIZE, sizeof(*t->owner8))) ==
	    NULL) {
		free(t);
		return -1;
	}
	r->impl = t;
	return 0;
}

static void
table_free(void *impl)
{
	struct table *t = impl;

	if (t == NULL)
		return;
	free(t->owner8);
	free(t->owner16);
	free(t);
}

/* A copy of the arcs, the first n of them filled in. */
static void *
table_dup_arcs(const void *src, size_t n, size_t size)
{
	void *p;

	if (src == NULL)
		return NULL;
	if ((p = calloc(RING_TABLE_SIZE, size)) != NULL && n > 0)
		memcpy(p, src, n * size);
	return p;
}

/* The arcs are copied only once a member owns them; an empty ring's
 * stay untouched. */
static void *
table_clone(const struct ring *r)
{
	const struct table *t = r->impl;
	struct table *c;
	size_t arcs = r->nmembers > 0 ? RING_TABLE_SIZE : 0;

	if ((c = malloc(sizeof(*c))) == NULL)
		return NULL;
	*c = *t;
	c->owner8 = table_dup_arcs(t->owner8, arcs, sizeof(*t->owner8));
	c->owner16 = table_dup_arcs(t->owner16, arcs, sizeof(*t->owner16));
	if ((t->owner8 != NULL && c->owner8 == NULL) ||
	    (t->owner16 != NULL && c->owner16 == NULL)) {
		table_free(c);
		return NULL;
	}
	return c;
}

/*
 * The newest member, r->members[r->nmembers - 1], takes the arcs it wins.
 * Keys that collide make ties possible: then every arc is compared in
 * full, names and all.  -1 when a 256th member finds no memory to widen
 * the table; the table is then unchanged.
 */
static int
table_add(struct ring *r)
{
	struct table *t = r->impl;
	uint16_t idx = (uint16_t)(r->nmembers - 1), sl;
	const struct ring_member *m = &r->members[idx];
	const struct ring_member *o;
	uint32_t a, sc, key32;
	unsigned os;
	size_t moved = 0;

	for (sl = 0; t->slot_used[sl]; sl++)
		;
	if (sl >= TABLE_SLOTS8 && t->owner16 == NULL &&
	    table_widen(t) == -1)
		return -1;
	key32 = (uint32_t)(XXH3_64bits(m->name, m->namelen) >> 32);
	t->key_ties += table_key_count(t, idx, key32);
	t->member_slot[idx] = sl;
	t->member_key[idx] = key32;
	t->slot_used[sl] = 1;
	t->slot_member[sl] = idx;
	t->slot_key[sl] = key32;
	if (r->nmembers == 1) {
		if (t->owner16 != NULL)
			for (a = 0; a < RING_TABLE_SIZE; a++)
				t->owner16[a] = sl;
		else
			memset(t->owner8, sl, RING_TABLE_SIZE);
		moved = RING_TABLE_SIZE;
	} else if (t->key_ties == 0)
		moved = t->owner16 != NULL ?
		    table_sweep16(t->owner16, t->slot_key, key32, sl) :
		    table_sweep8(t->owner8, t->slot_key, key32, (uint8_t)sl);
	else
		for (a = 0; a < RING_TABLE_SIZE; a++) {
			os = table_owner(t, a);
			o = &r->members[t->slot_member[os]];
			sc = score_of(key32, a);
			if (table_beats(m, sc, o, score_of(t->slot_key[os],
			    a))) {
				table_set_owner(t, a, sl);
				moved++;
			}
		}
	r->last_moved = (double)moved / RING_TABLE_SIZE;
	return 0;
}

/*
 * The next arcs from *a on that slot sl owns, into arcs[]; how many (at
 * most RANK_CHUNK).  Whole blocks are scanned while one surely fits, so
 * that the inner loops test nothing but their end.
 */
#define SCAN_BLOCK	256	/* divides RING_TABLE_SIZE */
#if RING_TABLE_BITS < 8
#error "table_arcs_of scans whole blocks of 256 arcs"
#endif

static size_t
table_arcs_of(const struct table *t, unsigned sl, uint32_t *a,
    uint32_t *arcs)
{
	const uint16_t *owner16 = t->owner16;
	const uint8_t *owner8 = t->owner8;
	size_t k = 0;
	uint32_t i = *a, end;

	for (; i < RING_TABLE_SIZE && k + SCAN_BLOCK <= RANK_CHUNK; i = end) {
		end = i + SCAN_BLOCK;
		if (owner16 != NULL)
			for (; i < end; i++) {
				arcs[k] = i;
				k += owner16[i] == sl;
			}
		else
			for (; i < end; i++) {
				arcs[k] = i;
				k += owner8[i] == sl;
			}
	}
	*a = i;
	return k;
}

/*
 * Member idx has just been taken out of r->members: the arcs its slot
 * held go to their next choice; nothing else changes.  Its arcs are
 * gathered RANK_CHUNK at a time and ranked together, member by member.
 */
static void
table_remove(struct ring *r, int idx)
{
	static uint32_t slots[RING_MEMBERS_MAX], arcs[RANK_CHUNK],
	    top[RANK_CHUNK], best[RANK_CHUNK];
	struct table *t = r->impl;
	uint16_t sl = t->member_slot[idx];
	uint32_t a = 0;
	size_t moved = 0, k, i;
	int n = r->nmembers, j;

	memmove(&t->member_slot[idx], &t->member_slot[idx + 1],
	    (n - idx) * sizeof(t->member_slot[0]));
	memmove(&t->member_key[idx], &t->member_key[idx + 1],
	    (n - idx) * sizeof(t->member_key[0]));
	t->key_ties -= table_key_count(t, n, t->slot_key[sl]);
	t->slot_used[sl] = 0;
	for (j = 0; j < n; j++) {
		t->slot_member[t->member_slot[j]] = (uint16_t)j;
		slots[j] = t->member_slot[j];
	}
	while (a < RING_TABLE_SIZE) {
		k = table_arcs_of(t, sl, &a, arcs);
		moved += k;
		if (n == 0) {
			for (i = 0; i < k; i++)
				table_set_owner(t, arcs[i], t->owner16 != NULL ?
				    TABLE_NONE16 : TABLE_NONE8);
			continue;
		}
		if (t->key_ties > 0)
			for (i = 0; i < k; i++)
				best[i] = t->member_slot[table_best(r, arcs[i],
				    &top[i])];
		else
			table_rank(arcs, k, t->member_key, slots, n, top,
			    best);
		if (t->owner16 != NULL)
			for (i = 0; i < k; i++)
				t->owner16[arcs[i]] = (uint16_t)best[i];
		else
			for (i = 0; i < k; i++)
				t->owner8[arcs[i]] = (uint8_t)best[i];
	}
	r->last_moved = (double)moved / RING_TABLE_SIZE;
	table_narrow(r);
}

/* One array read, the whole point of the table. */
static int
table_lookup(const struct ring *r, const void *key, size_t len)
{
	const struct table *t = r->impl;
	uint32_t a = table_arc(key, len);

	if (t->owner8 != NULL)
		return t->slot_member[t->owner8[a]];
	return t->slot_member[t->owner16[a]];
}

/*
 * The members in order of their score on key's arc, best first, at most
 * max: the owner, then where the arc would go if the owner left, and so
 * on.
 */
static int
table_ranking(const struct ring *r, const void *key, size_t len, int *out,
    int max)
{
	const struct table *t = r->impl;
	const struct ring_member *members = r->members;
	const uint32_t *keys = t->member_key;
	uint32_t sc[RING_RANK_MAX], a = table_arc(key, len);
	int n = 0, j, k, nmembers = r->nmembers;

	if (max > RING_RANK_MAX)
		max = RING_RANK_MAX;
	/* the loop reads nothing through r or t: out[] may alias them */
	for (j = 0; j < nmembers; j++) {
		const struct ring_member *m = &members[j];
		uint32_t s = score_of(keys[j], a);

		/* insertion into the best max so far */
		for (k = n; k > 0 && table_beats(m, s, &members[out[k - 1]],
		    sc[k - 1]); k--) {
			if (k < max) {
				out[k] = out[k - 1];
				sc[k] = sc[k - 1];
			}
		}
		if (k < max) {
			out[k] = j;
			sc[k] = s;
			if (n < max)
				n++;
		}
	}
	return n;
}

/* Arcs owned, counted by slot. */
static void
table_shares(const struct ring *r, double *out)
{
	const struct table *t = r->impl;
	uint32_t count[RING_MEMBERS_MAX] = { 0 }, a;
	int j;

	if (t->owner16 != NULL)
		for (a = 0; a < RING_TABLE_SIZE; a++)
			count[t->owner16[a]]++;
	else
		for (a = 0; a < RING_TABLE_SIZE; a++)
			count[t->owner8[a]]++;
	for (j = 0; j < r->nmembers; j++)
		out[j] = (double)count[t->member_slot[j]] / RING_TABLE_SIZE;
}

/* The table has no points as such: the owners of max arcs spread
 * evenly. */
static size_t
table_ticks(const struct ring *r, double *pos, int *member, size_t max)
{
	const struct table *t = r->impl;
	size_t n;

	for (n = 0; n < max; n++) {
		uint32_t a = (uint32_t)(((uint64_t)n << RING_TABLE_BITS) / max);

		pos[n] = (double)n / (double)max;
		member[n] = t->slot_member[table_owner(t, a)];
	}
	return n;
}

static size_t
table_points(const struct ring *r)
{
	return r->nmembers ? RING_TABLE_SIZE : 0;
}

static size_t
table_memory(const struct ring *r)
{
	const struct table *t = r->impl;

	return sizeof(*t) + RING_TABLE_SIZE * (t->owner16 != NULL ?
	    sizeof(*t->owner16) : sizeof(*t->owner8));
}

static double
table_key_position(const void *key, size_t len)
{
	return (double)table_arc(key, len) / (double)(1u << RING_TABLE_BITS);
}

const struct ring_ops ring_table_ops = {
	.init = table_init,
	.free = table_free,
	.clone = table_clone,
	.add = table_add,
	.remove = table_remove,
	.lookup = table_lookup,
	.rank = table_ranking,
	.shares = table_shares,
	.ticks = table_ticks,
	.points = table_points,
	.memory = table_memory,
	.key_position = table_key_position,
};
