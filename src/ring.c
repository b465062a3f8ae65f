/*
 * ring.c - consistent-hash rings.
 *
 * RING_ALGO_HASH is memcached's proxy ring: every member contributes
 * `vnodes` points, XXH3(name, seed = vnode number); the points are kept
 * sorted and a key goes to the first point at or after XXH3(key), wrapping
 * to the first point.  Ties between points (astronomically rare) are broken
 * by member name, so the result never depends on insertion order.
 *
 * RING_ALGO_CLASSIC is the classroom ring: 512 slots, 9 virtual servers per
 * member at Phi(i, j) = i^2 + j^2 + 2j + 25, requests at
 * H(i) = i^2 + 2i + 17, collisions resolved by linear probing.  Members are
 * placed in order of (id, name) so placement is independent of the order
 * they were added.
 *
 * RING_ALGO_TABLE (the default) divides the key space into 2^21 equal
 * arcs and gives each arc to the member with the highest score
 * mix(XXH3(name) ^ arc) - rendezvous (highest random weight) hashing per
 * arc.  A lookup is one array read.  Because every arc ranks all members
 * independently, adding a member moves only the arcs it now wins, and
 * removing one moves only its own arcs, to their second choice; with 2^21
 * arcs every member's share is within about 1% of the mean up to 64
 * members.  The table is updated in place: an add scores every arc for the
 * newcomer and for the arc's owner, a remove re-ranks only the arcs the
 * member held.  It keeps only what a lookup needs, the owner of each arc:
 * one byte per arc up to 255 members (2 MiB), two above; scores are
 * recomputed when a member changes rather than stored.
 *
 * The classic ring is rebuilt whole on every membership change (512
 * slots).  The hash ring is changed in place: a new member's points are
 * merged into the sorted array, a leaving member's taken out, each in
 * time linear in the points.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ring.h"

struct ring_member {
	char		 name[RING_NAME_MAX + 1];
	size_t		 namelen;
	uint64_t	 classic_id;
	uint64_t	 seed;		/* XXH3(name) */
	uint32_t	 key32;		/* its table key, RING_ALGO_TABLE */
	uint16_t	 slot;		/* its number in the table */
	void		*data;
};

#define TABLE_SLOTS8	255	/* slots a one-byte table holds, 0..254 */
#define TABLE_NONE8	0xff	/* the owner of no arc, one-byte table */
#define TABLE_NONE16	0xffff	/* the same, two-byte table */
#define TABLE_RANK_MAX	64	/* longest ranking ring_successors gives */

struct ring_point {
	uint64_t	 hash;
	uint32_t	 member;
};

struct ring {
	struct ring_config	 cfg;
	struct ring_member	*members;
	int			 nmembers;
	int			 cap;

	/* RING_ALGO_HASH */
	struct ring_point	*points;
	size_t			 npoints;
	size_t			 points_cap;

	/* RING_ALGO_CLASSIC: slot -> member placed there, or -1 */
	int16_t			 slot[RING_CLASSIC_SLOTS];
	/* slot -> first occupied slot at or after it, or -1 when empty */
	int16_t			 next[RING_CLASSIC_SLOTS];
	size_t			 nslots;

	/*
	 * RING_ALGO_TABLE: arc -> slot of its owner, in owner8 while every
	 * slot fits in a byte (at most 255 members), else in owner16; the
	 * other is NULL.  Slots stay put while member indices shift, so a
	 * removal touches only the arcs that change hands.
	 */
	uint8_t			*owner8;
	uint16_t		*owner16;
	uint32_t		 slot_key[RING_MEMBERS_MAX];	/* its key32 */
	uint16_t		 slot_member[RING_MEMBERS_MAX];	/* slot -> idx */
	uint8_t			 slot_used[RING_MEMBERS_MAX];
	int			 key_ties;	/* pairs of members, same key32 */

	double			 last_moved;
};

int
ring_algo_parse(const char *s, enum ring_algo *out)
{
	if (strcmp(s, "table") == 0 || strcmp(s, "default") == 0)
		*out = RING_ALGO_TABLE;
	else if (strcmp(s, "hash") == 0)
		*out = RING_ALGO_HASH;
	else if (strcmp(s, "classic") == 0)
		*out = RING_ALGO_CLASSIC;
	else
		return -1;
	return 0;
}

const char *
ring_algo_name(enum ring_algo algo)
{
	switch (algo) {
	case RING_ALGO_TABLE:
		return "table";
	case RING_ALGO_HASH:
		return "hash";
	case RING_ALGO_CLASSIC:
		return "classic";
	}
	return "?";
}

int
ring_capacity(const struct ring_config *cfg)
{
	return cfg->algo == RING_ALGO_CLASSIC ?
	    RING_CLASSIC_SLOTS / RING_CLASSIC_VNODES : RING_MEMBERS_MAX;
}

struct ring *
ring_new(const struct ring_config *cfg)
{
	struct ring *r;

	if (cfg->algo == RING_ALGO_HASH &&
	    (cfg->vnodes == 0 || cfg->vnodes > RING_VNODES_MAX))
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->cfg = *cfg;
	memset(r->slot, 0xff, sizeof(r->slot));
	memset(r->next, 0xff, sizeof(r->next));
	/* no arc is read before the first member takes them all: the
	 * pages stay untouched until then */
	if (cfg->algo == RING_ALGO_TABLE &&
	    (r->owner8 = calloc(RING_TABLE_SIZE, sizeof(*r->owner8))) ==
	    NULL) {
		ring_free(r);
		return NULL;
	}
	return r;
}

void
ring_free(struct ring *r)
{
	if (r == NULL)
		return;
	free(r->members);
	free(r->points);
	free(r->owner8);
	free(r->owner16);
	free(r);
}

/* --- the rendezvous table ------------------------------------------- */

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

static inline uint32_t
table_score(const struct ring_member *m, uint32_t a)
{
	return score_of(m->key32, a);
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
	uint32_t sc;
	int j, best = -1;

	*best_s = 0;
	for (j = 0; j < r->nmembers; j++) {
		const struct ring_member *m = &r->members[j];

		sc = score_of(m->key32, a);
		/* the name decides only an exact tie, which is rare */
		if (best == -1 || sc > *best_s || (sc == *best_s &&
		    table_beats(m, sc, &r->members[best], *best_s))) {
			best = j;
			*best_s = sc;
		}
	}
	return best;
}

/* How many members other than skip have key32 as their key. */
static int
table_key_count(const struct ring *r, uint32_t key32, int skip)
{
	int j, n = 0;

	for (j = 0; j < r->nmembers; j++)
		n += j != skip && r->members[j].key32 == key32;
	return n;
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
table_owner(const struct ring *r, uint32_t a)
{
	return r->owner16 != NULL ? r->owner16[a] : r->owner8[a];
}

static inline void
table_set_owner(struct ring *r, uint32_t a, unsigned sl)
{
	if (r->owner16 != NULL)
		r->owner16[a] = (uint16_t)sl;
	else
		r->owner8[a] = (uint8_t)sl;
}

/* A 256th member needs two bytes per arc; -1 when there is no memory,
 * and the table unchanged. */
static int
table_widen(struct ring *r)
{
	uint16_t *wide;
	uint32_t a;

	if ((wide = malloc(RING_TABLE_SIZE * sizeof(*wide))) == NULL)
		return -1;
	for (a = 0; a < RING_TABLE_SIZE; a++)
		wide[a] = r->owner8[a];
	free(r->owner8);
	r->owner8 = NULL;
	r->owner16 = wide;
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
	uint8_t *narrow, remap[RING_MEMBERS_MAX];
	uint32_t a;
	int j;

	if (r->owner16 == NULL || r->nmembers > TABLE_SLOTS8 ||
	    (narrow = malloc(RING_TABLE_SIZE * sizeof(*narrow))) == NULL)
		return;
	memset(remap, TABLE_NONE8, sizeof(remap));
	for (j = 0; j < r->nmembers; j++)
		remap[r->members[j].slot] = (uint8_t)j;
	for (a = 0; a < RING_TABLE_SIZE; a++)
		narrow[a] = r->owner16[a] == TABLE_NONE16 ? TABLE_NONE8 :
		    remap[r->owner16[a]];
	memset(r->slot_used, 0, sizeof(r->slot_used));
	for (j = 0; j < r->nmembers; j++) {
		r->members[j].slot = (uint16_t)j;
		r->slot_used[j] = 1;
		r->slot_member[j] = (uint16_t)j;
		r->slot_key[j] = r->members[j].key32;
	}
	free(r->owner16);
	r->owner16 = NULL;
	r->owner8 = narrow;
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
	uint16_t idx = (uint16_t)(r->nmembers - 1), sl;
	struct ring_member *m = &r->members[idx];
	const struct ring_member *o;
	uint32_t a, sc;
	unsigned os;
	size_t moved = 0;

	for (sl = 0; r->slot_used[sl]; sl++)
		;
	if (sl >= TABLE_SLOTS8 && r->owner16 == NULL &&
	    table_widen(r) == -1)
		return -1;
	r->key_ties += table_key_count(r, m->key32, idx);
	r->slot_used[sl] = 1;
	r->slot_member[sl] = idx;
	r->slot_key[sl] = m->key32;
	m->slot = sl;
	if (r->nmembers == 1) {
		if (r->owner16 != NULL)
			for (a = 0; a < RING_TABLE_SIZE; a++)
				r->owner16[a] = sl;
		else
			memset(r->owner8, sl, RING_TABLE_SIZE);
		moved = RING_TABLE_SIZE;
	} else if (r->key_ties == 0)
		moved = r->owner16 != NULL ?
		    table_sweep16(r->owner16, r->slot_key, m->key32, sl) :
		    table_sweep8(r->owner8, r->slot_key, m->key32, (uint8_t)sl);
	else
		for (a = 0; a < RING_TABLE_SIZE; a++) {
			os = table_owner(r, a);
			o = &r->members[r->slot_member[os]];
			sc = score_of(m->key32, a);
			if (table_beats(m, sc, o, score_of(o->key32, a))) {
				table_set_owner(r, a, sl);
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
table_arcs_of(const struct ring *r, unsigned sl, uint32_t *a,
    uint32_t *arcs)
{
	const uint16_t *owner16 = r->owner16;
	const uint8_t *owner8 = r->owner8;
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
 * The member in slot sl has just been taken out of r->members: the arcs it
 * held go to their next choice; nothing else changes.  Its arcs are
 * gathered RANK_CHUNK at a time and ranked together, member by member.
 */
static void
table_remove(struct ring *r, uint16_t sl)
{
	static uint32_t keys[RING_MEMBERS_MAX], slots[RING_MEMBERS_MAX],
	    arcs[RANK_CHUNK], top[RANK_CHUNK], best[RANK_CHUNK];
	uint32_t a = 0;
	size_t moved = 0, k, i;
	int n = r->nmembers, j;

	r->key_ties -= table_key_count(r, r->slot_key[sl], -1);
	r->slot_used[sl] = 0;
	for (j = 0; j < n; j++) {
		r->slot_member[r->members[j].slot] = (uint16_t)j;
		keys[j] = r->members[j].key32;
		slots[j] = r->members[j].slot;
	}
	while (a < RING_TABLE_SIZE) {
		k = table_arcs_of(r, sl, &a, arcs);
		moved += k;
		if (n == 0) {
			for (i = 0; i < k; i++)
				table_set_owner(r, arcs[i], r->owner16 != NULL ?
				    TABLE_NONE16 : TABLE_NONE8);
			continue;
		}
		if (r->key_ties > 0)
			for (i = 0; i < k; i++)
				best[i] = r->members[table_best(r, arcs[i],
				    &top[i])].slot;
		else
			table_rank(arcs, k, keys, slots, n, top, best);
		if (r->owner16 != NULL)
			for (i = 0; i < k; i++)
				r->owner16[arcs[i]] = (uint16_t)best[i];
		else
			for (i = 0; i < k; i++)
				r->owner8[arcs[i]] = (uint8_t)best[i];
	}
	r->last_moved = (double)moved / RING_TABLE_SIZE;
	table_narrow(r);
}

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

/* qsort has no context argument in C11; the members being sorted are
 * carried in this file static for the length of one qsort call. */
static const struct ring_member *sort_members;

static int
point_cmp(const void *a, const void *b)
{
	const struct ring_point *pa = a, *pb = b;

	if (pa->hash != pb->hash)
		return pa->hash < pb->hash ? -1 : 1;
	return strcmp(sort_members[pa->member].name,
	    sort_members[pb->member].name);
}

/* The points' order: by hash, ties by member name (see point_cmp). */
static int
point_before(const struct ring *r, const struct ring_point *a,
    const struct ring_point *b)
{
	if (a->hash != b->hash)
		return a->hash < b->hash;
	return strcmp(r->members[a->member].name,
	    r->members[b->member].name) < 0;
}

/*
 * The hash ring after its last member (index nmembers - 1) was appended:
 * its own points are sorted, then merged into the sorted array from the
 * back, in place.  Linear in the points, where sorting them all again
 * took a loop-stalling 0.2 s at 200 members of 4096 vnodes; the order is
 * the one a whole sort gives, so where keys go does not depend on it.
 */
static int
hash_add_member(struct ring *r)
{
	struct ring_point *pts, *mine;
	uint32_t m = (uint32_t)r->nmembers - 1, j, v = r->cfg.vnodes;
	size_t n = r->npoints + v, i, k;

	/* exact growth: the merge below is linear anyway, and a large
	 * realloc moves pages rather than bytes */
	if (n > r->points_cap) {
		if ((pts = realloc(r->points, n * sizeof(*pts))) == NULL)
			return -1;
		r->points = pts;
		r->points_cap = n;
	}
	if ((mine = malloc(v * sizeof(*mine))) == NULL)
		return -1;
	for (j = 0; j < v; j++) {
		mine[j].hash = XXH3_64bits_withSeed(r->members[m].name,
		    r->members[m].namelen, j);
		mine[j].member = m;
	}
	sort_members = r->members;
	qsort(mine, v, sizeof(*mine), point_cmp);
	sort_members = NULL;

	pts = r->points;
	i = r->npoints;
	k = n;
	j = v;
	while (j > 0) {
		if (i > 0 && point_before(r, &mine[j - 1], &pts[i - 1]))
			pts[--k] = pts[--i];
		else
			pts[--k] = mine[--j];
	}
	free(mine);
	r->npoints = n;
	return 0;
}

/*
 * The hash ring after member idx was taken out of the members array:
 * its points go, the others keep their order and take the member indices
 * shifted down.  Allocates nothing, so a removal cannot fail.
 */
static void
hash_remove_member(struct ring *r, uint32_t idx)
{
	size_t i, k = 0;

	for (i = 0; i < r->npoints; i++) {
		struct ring_point pt = r->points[i];

		if (pt.member == idx)
			continue;
		if (pt.member > idx)
			pt.member--;
		r->points[k++] = pt;
	}
	r->npoints = k;
}

static int
classic_order_cmp(const void *a, const void *b)
{
	const struct ring_member *m = sort_members;
	int ia = *(const int *)a, ib = *(const int *)b;

	if (m[ia].classic_id != m[ib].classic_id)
		return m[ia].classic_id < m[ib].classic_id ? -1 : 1;
	return strcmp(m[ia].name, m[ib].name);
}

static int
rebuild_classic(struct ring *r)
{
	int order[RING_CLASSIC_SLOTS / RING_CLASSIC_VNODES];
	int i, s, first;
	uint32_t j, slot;

	for (i = 0; i < r->nmembers; i++)
		order[i] = i;
	sort_members = r->members;
	qsort(order, r->nmembers, sizeof(order[0]), classic_order_cmp);
	sort_members = NULL;

	memset(r->slot, 0xff, sizeof(r->slot));
	r->nslots = 0;
	for (i = 0; i < r->nmembers; i++)
		for (j = 0; j < RING_CLASSIC_VNODES; j++) {
			slot = ring_classic_vnode_slot(
			    r->members[order[i]].classic_id, j);
			while (r->slot[slot] != -1)
				slot = (slot + 1) % RING_CLASSIC_SLOTS;
			r->slot[slot] = (int16_t)order[i];
			r->nslots++;
		}

	/* next[s]: first occupied slot clockwise from s, for O(1) lookup */
	memset(r->next, 0xff, sizeof(r->next));
	if (r->nslots == 0)
		return 0;
	for (first = 0; r->slot[first] == -1; first++)
		;
	r->next[first] = (int16_t)first;
	s = first;
	do {
		s = (s + RING_CLASSIC_SLOTS - 1) % RING_CLASSIC_SLOTS;
		r->next[s] = r->slot[s] != -1 ? (int16_t)s :
		    r->next[(s + 1) % RING_CLASSIC_SLOTS];
	} while (s != first);
	return 0;
}

static double	member_share(const struct ring *, int);
static int	add_distinct(int *, int, int);

/* Classic ring: the owner of every request id of one period, by seed. */
static void
classic_owner_seeds(const struct ring *r, uint64_t *out)
{
	size_t k;

	for (k = 0; k < RING_CLASSIC_SLOTS; k++)
		out[k] = r->cfg.algo != RING_ALGO_CLASSIC || r->nmembers == 0 ?
		    0 : r->members[r->slot[r->next[
		    ring_classic_request_slot(k)]]].seed;
}

static double
classic_moved(const struct ring *r, const uint64_t *before)
{
	uint64_t now[RING_CLASSIC_SLOTS];
	size_t k, moved = 0;

	classic_owner_seeds(r, now);
	for (k = 0; k < RING_CLASSIC_SLOTS; k++)
		moved += now[k] != before[k];
	return (double)moved / RING_CLASSIC_SLOTS;
}


int
ring_add(struct ring *r, const char *name, void *data, char *err,
    size_t errlen)
{
	uint64_t before[RING_CLASSIC_SLOTS];
	struct ring_member *m;
	size_t len = strlen(name);

	if (len == 0 || len > RING_NAME_MAX) {
		snprintf(err, errlen, "name must be 1 to %d bytes",
		    RING_NAME_MAX);
		return -1;
	}
	if (ring_find(r, name) != -1) {
		snprintf(err, errlen, "'%s' is already on the ring", name);
		return -1;
	}
	if (r->nmembers >= RING_MEMBERS_MAX) {
		snprintf(err, errlen, "a ring holds at most %d replicas",
		    RING_MEMBERS_MAX);
		return -1;
	}
	if (r->nmembers >= ring_capacity(&r->cfg)) {
		snprintf(err, errlen, "the classic ring holds at most %d "
		    "replicas; use the hash ring for more",
		    ring_capacity(&r->cfg));
		return -1;
	}
	if (r->nmembers == r->cap) {
		int ncap = r->cap ? r->cap * 2 : 8;

		if ((m = realloc(r->members, ncap * sizeof(*m))) == NULL)
			goto nomem;
		r->members = m;
		r->cap = ncap;
	}
	classic_owner_seeds(r, before);
	m = &r->members[r->nmembers];
	memcpy(m->name, name, len + 1);
	m->namelen = len;
	m->classic_id = ring_classic_id(name, len, 1);
	m->seed = XXH3_64bits(name, len);
	m->key32 = (uint32_t)(m->seed >> 32);
	m->data = data;
	r->nmembers++;
	if (r->cfg.algo == RING_ALGO_TABLE) {
		if (table_add(r) == -1) {
			r->nmembers--;
			goto nomem;
		}
		return 0;
	}
	if ((r->cfg.algo == RING_ALGO_CLASSIC ? rebuild_classic(r) :
	    hash_add_member(r)) == -1) {
		r->nmembers--;
		goto nomem;
	}
	r->last_moved = r->cfg.algo == RING_ALGO_CLASSIC ?
	    classic_moved(r, before) : member_share(r, r->nmembers - 1);
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
ring_remove(struct ring *r, const char *name)
{
	uint64_t before[RING_CLASSIC_SLOTS];
	int idx = ring_find(r, name), rc;
	uint16_t sl;
	double share;

	if (idx == -1)
		return -1;
	share = r->cfg.algo == RING_ALGO_HASH ? member_share(r, idx) : 0;
	sl = r->members[idx].slot;
	classic_owner_seeds(r, before);
	memmove(&r->members[idx], &r->members[idx + 1],
	    (r->nmembers - idx - 1) * sizeof(r->members[0]));
	r->nmembers--;
	if (r->cfg.algo == RING_ALGO_TABLE) {
		table_remove(r, sl);
		return 0;
	}
	/* neither allocates: a removal cannot fail */
	if (r->cfg.algo == RING_ALGO_CLASSIC)
		rc = rebuild_classic(r);
	else {
		hash_remove_member(r, (uint32_t)idx);
		rc = 0;
	}
	r->last_moved = r->cfg.algo == RING_ALGO_CLASSIC ?
	    classic_moved(r, before) : share;
	return rc;
}

int
ring_count(const struct ring *r)
{
	return r->nmembers;
}

int
ring_find(const struct ring *r, const char *name)
{
	int i;

	for (i = 0; i < r->nmembers; i++)
		if (strcmp(r->members[i].name, name) == 0)
			return i;
	return -1;
}

const char *
ring_member_name(const struct ring *r, int idx)
{
	return idx >= 0 && idx < r->nmembers ? r->members[idx].name : NULL;
}

void *
ring_member_data(const struct ring *r, int idx)
{
	return idx >= 0 && idx < r->nmembers ? r->members[idx].data : NULL;
}

size_t
ring_points(const struct ring *r)
{
	switch (r->cfg.algo) {
	case RING_ALGO_TABLE:
		return r->nmembers ? RING_TABLE_SIZE : 0;
	case RING_ALGO_CLASSIC:
		return r->nslots;
	default:
		return r->npoints;
	}
}

size_t
ring_memory(const struct ring *r)
{
	size_t n = sizeof(*r) + (size_t)r->cap * sizeof(r->members[0]) +
	    r->points_cap * sizeof(r->points[0]);

	if (r->cfg.algo == RING_ALGO_TABLE)
		n += RING_TABLE_SIZE * (r->owner16 != NULL ?
		    sizeof(*r->owner16) : sizeof(*r->owner8));
	return n;
}

/* Index of the first point with hash >= h, wrapping to 0. */
static size_t
hash_position(const struct ring *r, uint64_t h)
{
	size_t lo = 0, hi = r->npoints, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (r->points[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == r->npoints ? 0 : lo;
}

static uint32_t
classic_key_slot(const void *key, size_t len)
{
	return ring_classic_request_slot(ring_classic_id(key, len, 0));
}

int
ring_lookup(const struct ring *r, const void *key, size_t len)
{
	if (r->nmembers == 0)
		return -1;
	/* the table ring, told apart by the array it has: no more tests
	 * than a single width would take */
	if (r->owner8 != NULL)
		return r->slot_member[r->owner8[table_arc(key, len)]];
	if (r->owner16 != NULL)
		return r->slot_member[r->owner16[table_arc(key, len)]];
	if (r->cfg.algo == RING_ALGO_CLASSIC)
		return r->slot[r->next[classic_key_slot(key, len)]];
	return (int)r->points[hash_position(r, XXH3_64bits(key, len))].member;
}

/*
 * The members in order of their score on arc a, best first, at most max:
 * the owner, then where the arc would go if the owner left, and so on.
 */
static int
table_ranking(const struct ring *r, uint32_t a, int *out, int max)
{
	uint32_t sc[TABLE_RANK_MAX];
	int n = 0, j, k;

	if (max > TABLE_RANK_MAX)
		max = TABLE_RANK_MAX;
	for (j = 0; j < r->nmembers; j++) {
		const struct ring_member *m = &r->members[j];
		uint32_t s = table_score(m, a);

		/* insertion into the best max so far */
		for (k = n; k > 0 && table_beats(m, s, &r->members[out[k - 1]],
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

static int
add_distinct(int *out, int n, int member)
{
	int k;

	for (k = 0; k < n; k++)
		if (out[k] == member)
			return n;
	out[n] = member;
	return n + 1;
}

int
ring_successors(const struct ring *r, const void *key, size_t len, int *out,
    int max)
{
	int n = 0;
	size_t k, pos;

	if (r->nmembers == 0 || max <= 0)
		return 0;
	if (max > r->nmembers)
		max = r->nmembers;
	if (r->cfg.algo == RING_ALGO_TABLE)
		return table_ranking(r, table_arc(key, len), out, max);
	if (r->cfg.algo == RING_ALGO_CLASSIC) {
		pos = (size_t)r->next[classic_key_slot(key, len)];
		for (k = 0; k < RING_CLASSIC_SLOTS && n < max; k++) {
			size_t s = (pos + k) % RING_CLASSIC_SLOTS;

			if (r->slot[s] != -1)
				n = add_distinct(out, n, r->slot[s]);
		}
		return n;
	}
	pos = hash_position(r, XXH3_64bits(key, len));
	for (k = 0; k < r->npoints && n < max; k++)
		n = add_distinct(out, n,
		    (int)r->points[(pos + k) % r->npoints].member);
	return n;
}

int
ring_classic_slot_owner(const struct ring *r, unsigned slot)
{
	if (r->cfg.algo != RING_ALGO_CLASSIC || slot >= RING_CLASSIC_SLOTS)
		return -1;
	return r->slot[slot];
}

unsigned long
ring_bounded_cap(const struct ring *r, double factor, unsigned long total)
{
	double x;
	unsigned long c;

	if (r->nmembers == 0)
		return 0;
	x = factor * (double)(total + 1) / r->nmembers;
	c = (unsigned long)x;
	if ((double)c < x - 1e-9)
		c++;			/* the ceiling */
	return c < 1 ? 1 : c;
}

int
ring_lookup_bounded(const struct ring *r, const void *key, size_t len,
    double factor, unsigned long total, unsigned (*load)(const void *data),
    int *out, int max, int *displaced)
{
	int rank[TABLE_RANK_MAX], n, i, k = 0, j, least = -1;
	unsigned long cap = ring_bounded_cap(r, factor, total);

	*displaced = 0;
	if (r->nmembers == 0 || max <= 0)
		return 0;
	n = ring_successors(r, key, len, rank, TABLE_RANK_MAX);
	for (i = 0; i < n && k < max; i++)
		if (load(r->members[rank[i]].data) < cap)
			out[k++] = rank[i];
	if (k == 0) {
		/* every ranked member is full (more members than we rank):
		 * the least loaded of all is under the cap */
		for (j = 0; j < r->nmembers; j++)
			if (least == -1 || load(r->members[j].data) <
			    load(r->members[least].data))
				least = j;
		out[k++] = least;
	}
	*displaced = out[0] != rank[0];
	/* a retry target even if it is full: better than none */
	for (i = 0; i < n && k < max; i++)
		k = add_distinct(out, k, rank[i]);
	return k;
}

/* The share of keys member idx owns, for the hash and classic rings. */
static double
member_share(const struct ring *r, int idx)
{
	double *sh;
	double v;

	if (r->nmembers == 0 || (sh = calloc(r->nmembers, sizeof(*sh))) ==
	    NULL)
		return 0;
	ring_shares(r, sh);
	v = sh[idx];
	free(sh);
	return v;
}

/* The table's shares: arcs owned, counted by slot. */
static void
table_shares(const struct ring *r, double *out)
{
	uint32_t count[RING_MEMBERS_MAX] = { 0 }, a;
	int j;

	if (r->owner16 != NULL)
		for (a = 0; a < RING_TABLE_SIZE; a++)
			count[r->owner16[a]]++;
	else
		for (a = 0; a < RING_TABLE_SIZE; a++)
			count[r->owner8[a]]++;
	for (j = 0; j < r->nmembers; j++)
		out[j] = (double)count[r->members[j].slot] / RING_TABLE_SIZE;
}

void
ring_shares(const struct ring *r, double *out)
{
	size_t k;
	int i;

	for (i = 0; i < r->nmembers; i++)
		out[i] = 0;
	if (r->nmembers == 0)
		return;
	switch (r->cfg.algo) {
	case RING_ALGO_TABLE:
		table_shares(r, out);
		break;
	case RING_ALGO_CLASSIC:
		/* H(i) repeats every 512 ids: one period is every id */
		for (k = 0; k < RING_CLASSIC_SLOTS; k++)
			out[r->slot[r->next[ring_classic_request_slot(k)]]] +=
			    1.0 / RING_CLASSIC_SLOTS;
		break;
	case RING_ALGO_HASH:
		/* point k owns the keys after point k - 1, up to itself */
		for (k = 0; k < r->npoints; k++) {
			uint64_t prev = r->points[(k + r->npoints - 1) %
			    r->npoints].hash;
			uint64_t len = r->points[k].hash - prev;

			if (r->npoints == 1)
				out[r->points[k].member] = 1;
			else
				out[r->points[k].member] += (double)len /
				    18446744073709551616.0;
		}
		break;
	}
}

double
ring_last_moved(const struct ring *r)
{
	return r->last_moved;
}

size_t
ring_ticks(const struct ring *r, double *pos, int *member, size_t max)
{
	size_t i, n = 0, step;

	if (r->nmembers == 0 || max == 0)
		return 0;
	switch (r->cfg.algo) {
	case RING_ALGO_HASH:
		step = (r->npoints + max - 1) / max;
		for (i = 0; i < r->npoints && n < max; i += step, n++) {
			pos[n] = (double)r->points[i].hash / 18446744073709551616.0;
			member[n] = (int)r->points[i].member;
		}
		break;
	case RING_ALGO_CLASSIC:
		for (i = 0; i < RING_CLASSIC_SLOTS && n < max; i++)
			if (r->slot[i] >= 0) {
				pos[n] = (double)i / RING_CLASSIC_SLOTS;
				member[n++] = r->slot[i];
			}
		break;
	case RING_ALGO_TABLE:
		for (n = 0; n < max; n++) {
			uint32_t a = (uint32_t)(((uint64_t)n << RING_TABLE_BITS) /
			    max);

			pos[n] = (double)n / (double)max;
			member[n] = r->slot_member[table_owner(r, a)];
		}
		break;
	}
	return n;
}

double
ring_key_position(const struct ring *r, const void *key, size_t len)
{
	if (r->cfg.algo == RING_ALGO_TABLE)
		return (double)table_arc(key, len) / (double)(1u <<
		    RING_TABLE_BITS);
	if (r->cfg.algo == RING_ALGO_CLASSIC)
		return (double)classic_key_slot(key, len) / RING_CLASSIC_SLOTS;
	return (double)XXH3_64bits(key, len) / 18446744073709551616.0;
}

static void *
dup_array(const void *src, size_t n, size_t cap, size_t size)
{
	void *p;

	if (src == NULL)
		return NULL;
	if ((p = calloc(cap ? cap : 1, size)) != NULL && n > 0)
		memcpy(p, src, n * size);
	return p;
}

/*
 * A copy of r that changes independently: the route snapshots are
 * immutable, so a membership change edits a clone.  The table's arcs are
 * copied only once a member owns them; an empty ring's stay untouched.
 */
struct ring *
ring_clone(const struct ring *r)
{
	struct ring *c;
	size_t arcs = r->nmembers > 0 ? RING_TABLE_SIZE : 0;

	if ((c = malloc(sizeof(*c))) == NULL)
		return NULL;
	*c = *r;
	c->members = dup_array(r->members, r->nmembers, r->cap,
	    sizeof(*r->members));
	c->points = dup_array(r->points, r->npoints, r->points_cap,
	    sizeof(*r->points));
	c->owner8 = dup_array(r->owner8, arcs, RING_TABLE_SIZE,
	    sizeof(*r->owner8));
	c->owner16 = dup_array(r->owner16, arcs, RING_TABLE_SIZE,
	    sizeof(*r->owner16));
	if ((r->members != NULL && c->members == NULL) ||
	    (r->points != NULL && c->points == NULL) ||
	    (r->owner8 != NULL && c->owner8 == NULL) ||
	    (r->owner16 != NULL && c->owner16 == NULL)) {
		ring_free(c);
		return NULL;
	}
	return c;
}
