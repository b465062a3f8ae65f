/*
 * test_ring.c - properties of the consistent-hash rings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "ring.h"

#define NKEYS	20000

static const struct ring_config hash_cfg = { RING_ALGO_HASH, 160 };
static const struct ring_config table_cfg = { RING_ALGO_TABLE, 0 };
static const struct ring_config classic_cfg = { RING_ALGO_CLASSIC, 0 };

static struct ring *
make_ring(const struct ring_config *cfg, const char *const *names, int n)
{
	struct ring *r = ring_new(cfg);
	char err[128];
	int i;

	for (i = 0; i < n; i++)
		if (ring_add(r, names[i], (void *)names[i], err,
		    sizeof(err)) == -1)
			fprintf(stderr, "    ring_add %s: %s\n", names[i], err);
	return r;
}

static const char *
owner(const struct ring *r, int k)
{
	char key[32];
	int len = snprintf(key, sizeof(key), "%d", k);

	return ring_member_name(r, ring_lookup(r, key, (size_t)len));
}

static void
test_empty_ring(void)
{
	struct ring *r = ring_new(&hash_cfg);
	struct ring *t = ring_new(&table_cfg);
	int out[4];

	CHECK(r != NULL && t != NULL);
	CHECK_EQ_INT(ring_lookup(t, "x", 1), -1);
	ring_free(t);
	CHECK_EQ_INT(ring_lookup(r, "x", 1), -1);
	CHECK_EQ_INT(ring_successors(r, "x", 1, out, 4), 0);
	ring_free(r);
}

static void
test_bad_config(void)
{
	struct ring_config bad = { RING_ALGO_HASH, 0 };

	CHECK(ring_new(&bad) == NULL);
	bad.vnodes = RING_VNODES_MAX + 1;
	CHECK(ring_new(&bad) == NULL);
}

static void
test_duplicate_and_bad_names(void)
{
	struct ring *r = ring_new(&hash_cfg);
	char err[128], longname[RING_NAME_MAX + 2];

	CHECK_EQ_INT(ring_add(r, "a", NULL, err, sizeof(err)), 0);
	CHECK_EQ_INT(ring_add(r, "a", NULL, err, sizeof(err)), -1);
	CHECK(strstr(err, "already") != NULL);
	CHECK_EQ_INT(ring_add(r, "", NULL, err, sizeof(err)), -1);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ_INT(ring_add(r, longname, NULL, err, sizeof(err)), -1);
	CHECK_EQ_INT(ring_count(r), 1);
	CHECK_EQ_INT(ring_remove(r, "nope"), -1);
	ring_free(r);
}

static void
check_deterministic(const struct ring_config *cfg)
{
	static const char *names[] = { "server-1", "server-2", "server-3",
	    "server-4" };
	struct ring *a = make_ring(cfg, names, 4), *b = make_ring(cfg, names,
	    4);
	int k, same = 0;

	for (k = 0; k < NKEYS; k++)
		same += strcmp(owner(a, k), owner(b, k)) == 0;
	CHECK_EQ_INT(same, NKEYS);
	ring_free(a);
	ring_free(b);
}

static void
test_deterministic(void)
{
	check_deterministic(&table_cfg);
	check_deterministic(&hash_cfg);
	check_deterministic(&classic_cfg);
}

static void
check_order_independent(const struct ring_config *cfg)
{
	static const char *fwd[] = { "a", "server-2", "b", "server-10",
	    "web.1", "z_9" };
	static const char *rev[] = { "z_9", "web.1", "server-10", "b",
	    "server-2", "a" };
	static const char *mixed[] = { "server-10", "a", "z_9", "server-2",
	    "web.1", "b" };
	struct ring *r1 = make_ring(cfg, fwd, 6), *r2 = make_ring(cfg, rev,
	    6), *r3 = make_ring(cfg, mixed, 6);
	int k, same = 0;

	for (k = 0; k < NKEYS; k++)
		same += strcmp(owner(r1, k), owner(r2, k)) == 0 &&
		    strcmp(owner(r1, k), owner(r3, k)) == 0;
	CHECK_EQ_INT(same, NKEYS);
	ring_free(r1);
	ring_free(r2);
	ring_free(r3);
}

static void
test_order_independent(void)
{
	check_order_independent(&table_cfg);
	check_order_independent(&hash_cfg);
	check_order_independent(&classic_cfg);
}

/* Also via remove-then-add: the ring only knows its current members. */
static void
check_history_independent(const struct ring_config *cfg)
{
	static const char *names[] = { "a", "b", "c" };
	struct ring *r1 = make_ring(cfg, names, 3);
	struct ring *r2 = make_ring(cfg, names, 3);
	char err[64];
	int k, same = 0;

	ring_add(r2, "d", NULL, err, sizeof(err));
	ring_remove(r2, "a");
	ring_add(r2, "a", (void *)"a", err, sizeof(err));
	ring_remove(r2, "d");
	for (k = 0; k < NKEYS; k++)
		same += strcmp(owner(r1, k), owner(r2, k)) == 0;
	CHECK_EQ_INT(same, NKEYS);
	ring_free(r1);
	ring_free(r2);
}

static void
test_history_independent(void)
{
	check_history_independent(&table_cfg);
	check_history_independent(&hash_cfg);
}

/*
 * The hash ring is changed in place (a new member's points merged in, a
 * leaving member's taken out): after any history its points, in order,
 * and every key's ranking are those of a ring built fresh.
 */
static void
test_hash_changes_match_a_fresh_ring(void)
{
	static const struct ring_config cfg = { RING_ALGO_HASH, 64 };
	struct ring *r = ring_new(&cfg), *fresh = ring_new(&cfg);
	static char names[60][16];
	static double pa[60 * 64], pb[60 * 64];
	static int ma[60 * 64], mb[60 * 64];
	char err[64], key[16];
	int i, k, same = 0, oa[4], ob[4], na, nb;
	size_t n, nf;

	for (i = 0; i < 60; i++)
		snprintf(names[i], sizeof(names[i]), "m-%d", (i * 37) % 60);
	for (i = 0; i < 60; i++)
		CHECK(ring_add(r, names[i], names[i], err, sizeof(err)) == 0);
	for (i = 0; i < 60; i += 3)
		CHECK_EQ_INT(ring_remove(r, names[i]), 0);
	for (i = 0; i < 60; i += 6)
		CHECK(ring_add(r, names[i], names[i], err, sizeof(err)) == 0);
	for (i = 59; i >= 0; i--)
		if (i % 3 != 0 || i % 6 == 0)
			CHECK(ring_add(fresh, names[i], names[i], err,
			    sizeof(err)) == 0);
	CHECK_EQ_INT(ring_count(r), ring_count(fresh));
	CHECK_EQ_INT((int)ring_points(r), 50 * 64);
	n = ring_ticks(r, pa, ma, 60 * 64);
	nf = ring_ticks(fresh, pb, mb, 60 * 64);
	CHECK_EQ_INT((int)n, (int)nf);
	for (i = 0; i < (int)n; i++)
		same += pa[i] == pb[i] && strcmp(ring_member_name(r, ma[i]),
		    ring_member_name(fresh, mb[i])) == 0;
	CHECK_EQ_INT(same, (int)n);
	for (same = 0, k = 0; k < NKEYS; k++) {
		int len = snprintf(key, sizeof(key), "%d", k), ok;

		na = ring_successors(r, key, (size_t)len, oa, 4);
		nb = ring_successors(fresh, key, (size_t)len, ob, 4);
		ok = na == nb;
		for (i = 0; ok && i < na; i++)
			ok = strcmp(ring_member_name(r, oa[i]),
			    ring_member_name(fresh, ob[i])) == 0;
		same += ok;
	}
	CHECK_EQ_INT(same, NKEYS);
	ring_free(r);
	ring_free(fresh);
}

static void
check_add_moves_keys_only_to_new(const struct ring_config *cfg)
{
	static const char *names[] = { "server-1", "server-2", "server-3",
	    "server-4", "server-5" };
	struct ring *r = make_ring(cfg, names, 5);
	const char **before = calloc(NKEYS, sizeof(*before));
	char err[64];
	int k, moved = 0, wrong = 0;

	for (k = 0; k < NKEYS; k++)
		before[k] = owner(r, k);
	CHECK_EQ_INT(ring_add(r, "server-6", NULL, err, sizeof(err)), 0);
	for (k = 0; k < NKEYS; k++) {
		const char *now = owner(r, k);

		if (strcmp(now, before[k]) != 0) {
			moved++;
			wrong += strcmp(now, "server-6") != 0;
		}
	}
	CHECK_EQ_INT(wrong, 0);
	/* about 1/6 of the keys, and certainly some */
	CHECK(moved > NKEYS / 12 && moved < NKEYS / 3);
	/* what the ring says moved is what moved, within sampling */
	CHECK(ring_last_moved(r) > 0.12 && ring_last_moved(r) < 0.22);
	free(before);
	ring_free(r);
}

static void
test_add_moves_keys_only_to_new(void)
{
	check_add_moves_keys_only_to_new(&table_cfg);
	check_add_moves_keys_only_to_new(&hash_cfg);
}

static void
check_remove_moves_only_its_keys(const struct ring_config *cfg)
{
	static const char *names[] = { "server-1", "server-2", "server-3",
	    "server-4", "server-5" };
	struct ring *r = make_ring(cfg, names, 5);
	char (*before)[16] = calloc(NKEYS, sizeof(*before));
	int k, moved = 0, wrong = 0;

	for (k = 0; k < NKEYS; k++)
		snprintf(before[k], sizeof(before[k]), "%s", owner(r, k));
	CHECK_EQ_INT(ring_remove(r, "server-3"), 0);
	for (k = 0; k < NKEYS; k++) {
		const char *now = owner(r, k);

		CHECK(strcmp(now, "server-3") != 0 || (wrong++, 0));
		if (strcmp(now, before[k]) != 0) {
			moved++;
			wrong += strcmp(before[k], "server-3") != 0;
		}
	}
	CHECK_EQ_INT(wrong, 0);
	CHECK(moved > NKEYS / 10 && moved < NKEYS / 2);
	free(before);
	ring_free(r);
}

static void
test_remove_moves_only_its_keys(void)
{
	check_remove_moves_only_its_keys(&table_cfg);
	check_remove_moves_only_its_keys(&hash_cfg);
}

static void
check_successors(const struct ring_config *cfg)
{
	static const char *names[] = { "a", "b", "c", "d" };
	struct ring *r = make_ring(cfg, names, 4);
	int out[8], k, n, i, j, bad = 0;
	char key[16];

	for (k = 0; k < 2000; k++) {
		int len = snprintf(key, sizeof(key), "%d", k);

		n = ring_successors(r, key, (size_t)len, out, 8);
		bad += n != 4;
		bad += out[0] != ring_lookup(r, key, (size_t)len);
		for (i = 0; i < n; i++)
			for (j = i + 1; j < n; j++)
				bad += out[i] == out[j];
		/* after removing the owner, its successor owns the key */
		if (k % 100 == 0) {
			struct ring *r2 = make_ring(cfg, names, 4);
			const char *next = ring_member_name(r, out[1]);

			ring_remove(r2, ring_member_name(r, out[0]));
			bad += strcmp(ring_member_name(r2, ring_lookup(r2, key,
			    (size_t)len)), next) != 0;
			ring_free(r2);
		}
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(ring_successors(r, "x", 1, out, 2), 2);
	ring_free(r);
}

static void
test_successors(void)
{
	check_successors(&table_cfg);
	check_successors(&hash_cfg);
}

/* Shares are exact and add up; the table's are close to even. */
static void
test_shares(void)
{
	static const char *names[] = { "server-1", "server-2", "server-3",
	    "server-4", "server-5", "server-6", "server-7", "server-8" };
	const struct ring_config *cfgs[] = { &table_cfg, &hash_cfg,
	    &classic_cfg };
	double sh[8], sum;
	size_t c;
	int i;

	for (c = 0; c < 3; c++) {
		struct ring *r = make_ring(cfgs[c], names, 8);

		ring_shares(r, sh);
		for (sum = 0, i = 0; i < 8; i++)
			sum += sh[i];
		CHECK(sum > 0.999999 && sum < 1.000001);
		if (cfgs[c] == &table_cfg)
			for (i = 0; i < 8; i++)
				CHECK(sh[i] > 0.95 / 8 && sh[i] < 1.05 / 8);
		ring_free(r);
	}
}

static void
test_hash_spreads_keys(void)
{
	static const char *names[] = { "server-1", "server-2", "server-3" };
	struct ring *r = make_ring(&hash_cfg, names, 3);
	int counts[3] = { 0, 0, 0 }, k, i;

	for (k = 0; k < NKEYS; k++)
		for (i = 0; i < 3; i++)
			counts[i] += strcmp(owner(r, k), names[i]) == 0;
	for (i = 0; i < 3; i++)
		CHECK(counts[i] > NKEYS / 5 && counts[i] < NKEYS / 2);
	ring_free(r);
}

/* Slots worked out by hand from Phi(i, j) = i^2 + j^2 + 2j + 25. */
static void
test_classic_formulas(void)
{
	static const unsigned s1[] = { 26, 29, 34, 41, 50, 61, 74, 89, 106 };
	unsigned j;

	for (j = 0; j < 9; j++)
		CHECK_EQ_INT(ring_classic_vnode_slot(1, j), s1[j]);
	CHECK_EQ_INT(ring_classic_vnode_slot(2, 0), 29);
	CHECK_EQ_INT(ring_classic_vnode_slot(3, 8), 114);
	/* H(i) = i^2 + 2i + 17 */
	CHECK_EQ_INT(ring_classic_request_slot(1), 20);
	CHECK_EQ_INT(ring_classic_request_slot(5), 52);
	CHECK_EQ_INT(ring_classic_request_slot(10), 137);
	CHECK_EQ_INT(ring_classic_request_slot(30), (900 + 60 + 17) % 512);
	CHECK_EQ_INT(ring_classic_request_slot(512 + 5), 52);
	CHECK_EQ_INT(ring_classic_id("server-12", 9, 1), 12);
	CHECK_EQ_INT(ring_classic_id("42", 2, 0), 42);
}

static void
test_classic_slots(void)
{
	static const char *names[] = { "server-3", "server-1", "server-2" };
	struct ring *r = make_ring(&classic_cfg, names, 3);
	int s1 = ring_find(r, "server-1"), s2 = ring_find(r, "server-2"),
	    s3 = ring_find(r, "server-3");

	CHECK_EQ_INT(ring_points(r), 27);
	/* server-1 is placed first and keeps its slots */
	CHECK_EQ_INT(ring_classic_slot_owner(r, 26), s1);
	CHECK_EQ_INT(ring_classic_slot_owner(r, 29), s1);
	CHECK_EQ_INT(ring_classic_slot_owner(r, 106), s1);
	/* server-2's Phi(2,0) = 29 is taken: linear probing moves it to 30 */
	CHECK_EQ_INT(ring_classic_slot_owner(r, 30), s2);
	CHECK_EQ_INT(ring_classic_slot_owner(r, 32), s2);
	CHECK_EQ_INT(ring_classic_slot_owner(r, 109), s2);
	/* server-3: 34 (taken by server-1) -> 35, 37 (server-2) -> 38 */
	CHECK_EQ_INT(ring_classic_slot_owner(r, 35), s3);
	CHECK_EQ_INT(ring_classic_slot_owner(r, 38), s3);
	CHECK_EQ_INT(ring_classic_slot_owner(r, 114), s3);
	CHECK_EQ_INT(ring_classic_slot_owner(r, 31), -1);

	/* requests: H(1) = 20 -> 26; H(5) = 52 -> 53 (server-2, j = 4);
	 * H(6) = 65 -> 69 (server-3, j = 5); H(7) = 80 -> 82 (server-3);
	 * H(10) = 137, past the last slot (114): wraps to 26 */
	CHECK(strcmp(owner(r, 1), "server-1") == 0);
	CHECK(strcmp(owner(r, 5), "server-2") == 0);
	CHECK(strcmp(owner(r, 6), "server-3") == 0);
	CHECK(strcmp(owner(r, 7), "server-3") == 0);
	CHECK(strcmp(owner(r, 10), "server-1") == 0);
	ring_free(r);
}

static void
test_classic_capacity(void)
{
	struct ring *r = ring_new(&classic_cfg);
	char name[32], err[128];
	int i, added = 0;

	for (i = 1; i <= 60; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		added += ring_add(r, name, NULL, err, sizeof(err)) == 0;
	}
	CHECK_EQ_INT(added, 56);
	CHECK(strstr(err, "at most 56") != NULL);
	CHECK_EQ_INT(ring_points(r), 56 * 9);
	ring_free(r);
}

/* Bounded loads: a replica's load as the test keeps it. */
static unsigned
test_load(const void *data)
{
	return *(const unsigned *)data;
}

/* Zipf(1.1)-skewed key k out of nkeys, from a uniform u in [0, 1). */
static int
zipf_key(const double *cdf, int nkeys, double u)
{
	int lo = 0, hi = nkeys - 1;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
check_bounded(const struct ring_config *cfg, double factor)
{
	static const char *names[] = { "s1", "s2", "s3", "s4", "s5", "s6" };
	enum { NK = 1000, N = 6, STEPS = 20000 };
	unsigned load[N] = { 0 };
	struct ring *r = ring_new(cfg);
	double cdf[NK], sum = 0;
	int inflight[256], ninflight = 0, i, over = 0, displaced_seen = 0;
	unsigned long total = 0;
	uint64_t rng = 42;
	char err[64], key[16];

	for (i = 0; i < N; i++)
		ring_add(r, names[i], &load[i], err, sizeof(err));
	for (i = 0; i < NK; i++)
		sum += cdf[i] = 1.0 / pow(i + 1, 1.1);
	for (i = 0, cdf[0] /= sum; i + 1 < NK; i++)
		cdf[i + 1] = cdf[i] + cdf[i + 1] / sum;

	for (i = 0; i < STEPS; i++) {
		int out[2], n, disp, m, k;
		unsigned long cap;

		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		/* keep about 200 requests in flight: leave, then arrive */
		if (ninflight >= 200 || (ninflight > 0 && (rng >> 60) < 7)) {
			k = (int)((rng >> 20) % (uint64_t)ninflight);
			load[inflight[k]]--;
			total--;
			inflight[k] = inflight[--ninflight];
			continue;
		}
		snprintf(key, sizeof(key), "%d", zipf_key(cdf, NK,
		    (double)(rng >> 11) / 9007199254740992.0));
		cap = ring_bounded_cap(r, factor, total);
		n = ring_lookup_bounded(r, key, strlen(key), factor, total,
		    test_load, out, 2, &disp);
		if (n < 1) {
			over++;
			continue;
		}
		m = (int)((unsigned *)ring_member_data(r, out[0]) - load);
		over += load[m] + 1 > cap;	/* never over the cap */
		displaced_seen += disp;
		/* the owner is taken whenever it has room */
		if (!disp)
			CHECK(out[0] == ring_lookup(r, key, strlen(key)));
		else
			CHECK(load[ring_lookup(r, key, strlen(key))] + 1 > cap);
		CHECK(n < 2 || out[1] != out[0]);
		load[m]++;
		total++;
		inflight[ninflight++] = m;
	}
	CHECK_EQ_INT(over, 0);
	/* with this much skew, the cap must have bitten */
	CHECK(displaced_seen > 0);
	ring_free(r);
}

static void
test_bounded_loads(void)
{
	check_bounded(&table_cfg, 1.25);
	check_bounded(&table_cfg, 1.0);
	check_bounded(&hash_cfg, 1.25);
}

/*
 * The table keeps one byte per arc up to 255 members, two from the 256th
 * on, and one again below; routes are those of a ring built afresh.
 */
static void
test_table_width(void)
{
	struct ring *r = ring_new(&table_cfg), *fresh = ring_new(&table_cfg);
	char name[32], err[128];
	size_t narrow, wide;
	int i, k, same = 0;

	for (i = 1; i <= 255; i++) {
		snprintf(name, sizeof(name), "node-%d", i);
		CHECK(ring_add(r, name, NULL, err, sizeof(err)) == 0);
	}
	narrow = ring_memory(r);
	CHECK(narrow >= RING_TABLE_SIZE && narrow < 2 * RING_TABLE_SIZE);
	CHECK(ring_add(r, "node-256", NULL, err, sizeof(err)) == 0);
	wide = ring_memory(r);
	CHECK_EQ_INT(wide - narrow, RING_TABLE_SIZE);
	CHECK_EQ_INT(ring_remove(r, "node-7"), 0);
	CHECK_EQ_INT(ring_memory(r), narrow);
	for (i = 256; i >= 1; i--) {
		snprintf(name, sizeof(name), "node-%d", i);
		if (i != 7)
			ring_add(fresh, name, NULL, err, sizeof(err));
	}
	for (k = 0; k < NKEYS; k++)
		same += strcmp(owner(r, k), owner(fresh, k)) == 0;
	CHECK_EQ_INT(same, NKEYS);
	/* and once more across, by adding */
	CHECK(ring_add(r, "node-7", NULL, err, sizeof(err)) == 0);
	CHECK_EQ_INT(ring_memory(r), wide);
	CHECK(ring_add(fresh, "node-7", NULL, err, sizeof(err)) == 0);
	for (same = 0, k = 0; k < NKEYS; k++)
		same += strcmp(owner(r, k), owner(fresh, k)) == 0;
	CHECK_EQ_INT(same, NKEYS);
	ring_free(fresh);
	ring_free(r);
}

/*
 * Routes pinned down: for a few member sets reached by adds and removes,
 * the owner of 1,000 keys, as the table ring answered when these tests
 * were written (ring_routes.h, made by `test_ring --print-routes`).  The
 * table's internals may change; where a key goes may not, or every
 * ringlb upgrade would move keys between replicas.
 */
struct route_step {
	char		 op;		/* '+' add, '-' remove */
	const char	*prefix;
	int		 from, to;	/* the names prefix<from>..prefix<to> */
};

struct route_case {
	const char		*what;
	const struct route_step	*steps;
};

/* replica-55618 and replica-60611 have the same 32-bit XXH3 key: they tie
 * on every arc, and the name decides. */
static const struct route_step route_3[] = {
	{ '+', "server-", 1, 5 }, { '-', "server-", 2, 2 },
	{ '-', "server-", 4, 4 }, { '+', "web.", 7, 7 },
	{ '-', "server-", 5, 5 }, { 0, NULL, 0, 0 }
};
static const struct route_step route_8[] = {
	{ '+', "server-", 1, 10 }, { '-', "server-", 3, 3 },
	{ '-', "server-", 6, 6 }, { '-', "server-", 9, 9 },
	{ '+', "Server ", 4, 4 }, { '-', "server-", 1, 1 },
	{ '+', "web.", 2, 2 }, { 0, NULL, 0, 0 }
};
static const struct route_step route_64[] = {
	{ '+', "server-", 1, 70 }, { '-', "server-", 5, 10 },
	{ '+', "replica-", 1, 3 }, { '-', "server-", 20, 20 },
	{ '-', "server-", 40, 40 }, { '-', "server-", 60, 60 },
	{ 0, NULL, 0, 0 }
};
static const struct route_step route_tied[] = {
	{ '+', "server-", 1, 1 }, { '+', "replica-", 60611, 60611 },
	{ '+', "replica-", 55618, 55618 }, { '+', "server-", 2, 2 },
	{ '-', "server-", 1, 1 }, { '+', "server-", 3, 3 },
	{ '-', "replica-", 55618, 55618 }, { '+', "replica-", 55618, 55618 },
	{ 0, NULL, 0, 0 }
};
static const struct route_step route_300[] = {
	{ '+', "node-", 1, 300 }, { 0, NULL, 0, 0 }
};
static const struct route_step route_240[] = {
	{ '+', "node-", 1, 300 }, { '-', "node-", 1, 60 },
	{ '+', "node-", 301, 320 }, { '-', "node-", 100, 119 },
	{ 0, NULL, 0, 0 }
};

static const struct route_case route_cases[] = {
	{ "3 members", route_3 },
	{ "8 members", route_8 },
	{ "64 members", route_64 },
	{ "4 members, two of them tied", route_tied },
	{ "300 members", route_300 },
	{ "240 members, after 320", route_240 },
};
#define ROUTE_CASES	(sizeof(route_cases) / sizeof(route_cases[0]))
#define ROUTE_KEYS	1000
#define ROUTE_MEMBERS	320

/* An owner is written as its rank in the member names sorted, in one
 * digit of this alphabet up to 64 members, else two. */
static const char route_digits[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Play the steps on a new table ring; the member names sorted into
 * names[] (ROUTE_MEMBERS of RING_NAME_LEN), their number returned.
 */
static struct ring *
route_play(const struct route_step *st, char (*names)[RING_NAME_LEN],
    int *n)
{
	struct ring *r = ring_new(&table_cfg);
	char name[RING_NAME_LEN], err[128];
	const char *sorted[ROUTE_MEMBERS];
	int i, k;

	for (; st->op != 0; st++)
		for (i = st->from; i <= st->to; i++) {
			snprintf(name, sizeof(name), "%s%d", st->prefix, i);
			if (st->op == '+')
				CHECK(ring_add(r, name, NULL, err,
				    sizeof(err)) == 0);
			else
				CHECK(ring_remove(r, name) == 0);
		}
	*n = ring_count(r);
	for (k = 0; k < *n; k++)
		sorted[k] = ring_member_name(r, k);
	qsort(sorted, *n, sizeof(sorted[0]), name_cmp);
	for (k = 0; k < *n; k++)
		snprintf(names[k], RING_NAME_LEN, "%s", sorted[k]);
	return r;
}

/* The owners of the ROUTE_KEYS keys, written as in ring_routes.h. */
static void
route_encode(const struct ring *r, char (*names)[RING_NAME_LEN], int n,
    char *out)
{
	char key[32];
	const char *owner_name, **at;
	const char *sorted[ROUTE_MEMBERS];
	int i, len, rank, k;

	for (k = 0; k < n; k++)
		sorted[k] = names[k];
	for (i = 0; i < ROUTE_KEYS; i++) {
		len = snprintf(key, sizeof(key), "req-%d", i);
		owner_name = ring_member_name(r, ring_lookup(r, key,
		    (size_t)len));
		at = owner_name == NULL ? NULL : bsearch(&owner_name, sorted,
		    n, sizeof(sorted[0]), name_cmp);
		rank = at == NULL ? 0 : (int)(at - sorted);
		if (n > 64) {
			*out++ = route_digits[rank / 64];
			*out++ = route_digits[rank % 64];
		} else
			*out++ = route_digits[rank];
	}
	*out = '\0';
}

#include "ring_routes.h"

static void
test_routes_pinned(void)
{
	static char names[ROUTE_MEMBERS][RING_NAME_LEN];
	static char got[2 * ROUTE_KEYS + 1];
	char err[128];
	size_t c;
	int n, k, i;

	for (c = 0; c < ROUTE_CASES; c++) {
		struct ring *r = route_play(route_cases[c].steps, names, &n);
		struct ring *fresh = ring_new(&table_cfg);

		route_encode(r, names, n, got);
		if (strcmp(got, route_answers[c]) != 0) {
			for (i = 0; got[i] == route_answers[c][i]; i++)
				;
			fprintf(stderr, "    %s: routes differ from "
			    "position %d\n", route_cases[c].what, i);
			CHECK(strcmp(got, route_answers[c]) == 0);
		}
		/* the same members added afresh, in name order */
		for (k = 0; k < n; k++)
			CHECK(ring_add(fresh, names[k], NULL, err,
			    sizeof(err)) == 0);
		route_encode(fresh, names, n, got);
		CHECK(strcmp(got, route_answers[c]) == 0);
		ring_free(fresh);
		ring_free(r);
	}
}

/* Write ring_routes.h from the ring as it routes now. */
static int
print_routes(void)
{
	static char names[ROUTE_MEMBERS][RING_NAME_LEN];
	static char got[2 * ROUTE_KEYS + 1];
	size_t c, i, len;
	int n;

	printf("/*\n * ring_routes.h - owners of the keys req-0..req-%d for "
	    "the member sets of\n * test_ring.c's route_cases, made by "
	    "`test_ring --print-routes`.\n */\n"
	    "static const char *const route_answers[] = {\n", ROUTE_KEYS - 1);
	for (c = 0; c < ROUTE_CASES; c++) {
		struct ring *r = route_play(route_cases[c].steps, names, &n);

		route_encode(r, names, n, got);
		printf("\t/* %s */\n", route_cases[c].what);
		len = strlen(got);
		for (i = 0; i < len; i += 64)
			printf("\t\"%.64s\"%s\n", got + i, i + 64 < len ? "" :
			    ",");
		ring_free(r);
	}
	printf("};\n");
	return harness_failed_checks ? 1 : 0;
}

/*
 * A clone routes as its original, and each changes without the other:
 * a route snapshot keeps routing as it was while the next one is edited.
 */
static void
check_clone(const struct ring_config *cfg)
{
	static const char *names[] = { "a", "server-2", "b", "server-10" };
	struct ring *r = make_ring(cfg, names, 4), *c, *e;
	char err[128];
	int k, same = 0, moved = 0;

	c = ring_clone(r);
	CHECK(c != NULL);
	for (k = 0; k < NKEYS; k++)
		same += strcmp(owner(r, k), owner(c, k)) == 0;
	CHECK_EQ_INT(same, NKEYS);
	CHECK(ring_add(c, "web.1", NULL, err, sizeof(err)) == 0);
	CHECK(ring_remove(c, "a") == 0);
	CHECK_EQ_INT(ring_count(r), 4);
	CHECK_EQ_INT(ring_count(c), 4);
	CHECK(ring_find(r, "a") >= 0 && ring_find(r, "web.1") == -1);
	for (k = 0; k < NKEYS; k++)
		moved += strcmp(owner(r, k), owner(c, k)) != 0;
	CHECK(moved > 0);
	ring_free(r);
	/* the clone of an emptied ring takes its first member whole */
	CHECK(ring_remove(c, "b") == 0 && ring_remove(c, "web.1") == 0 &&
	    ring_remove(c, "server-2") == 0 && ring_remove(c, "server-10") == 0);
	e = ring_clone(c);
	CHECK(e != NULL && ring_count(e) == 0 && ring_lookup(e, "k", 1) == -1);
	CHECK(ring_add(e, "only", NULL, err, sizeof(err)) == 0);
	for (k = 0, same = 0; k < NKEYS; k++)
		same += strcmp(owner(e, k), "only") == 0;
	CHECK_EQ_INT(same, NKEYS);
	ring_free(c);
	ring_free(e);
}

static void
test_clone(void)
{
	check_clone(&table_cfg);
	check_clone(&hash_cfg);
	check_clone(&classic_cfg);
}

static const struct test_case tests[] = {
	{ "bounded loads never exceed the cap", test_bounded_loads },
	{ "empty ring maps nothing", test_empty_ring },
	{ "bad vnode counts are refused", test_bad_config },
	{ "duplicate and bad names are refused", test_duplicate_and_bad_names },
	{ "same members give the same mapping", test_deterministic },
	{ "insertion order does not matter", test_order_independent },
	{ "membership history does not matter", test_history_independent },
	{ "hash ring changes in place match a fresh build",
	  test_hash_changes_match_a_fresh_ring },
	{ "adding moves keys only to the new member",
	  test_add_moves_keys_only_to_new },
	{ "removing moves only the removed member's keys",
	  test_remove_moves_only_its_keys },
	{ "successors are distinct and start at the owner", test_successors },
	{ "hash ring spreads keys over every member", test_hash_spreads_keys },
	{ "shares are exact and add up to one", test_shares },
	{ "classic formulas H and Phi", test_classic_formulas },
	{ "classic slots with linear probing, by hand", test_classic_slots },
	{ "classic ring holds at most 56 replicas", test_classic_capacity },
	{ "table owners take two bytes from 256 members on, one below",
	  test_table_width },
	{ "the table ring routes pinned keys as it always has",
	  test_routes_pinned },
	{ "a clone routes alike and changes on its own", test_clone },
};

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--print-routes") == 0)
		return print_routes();
	return harness_run("ring", tests, sizeof(tests) / sizeof(tests[0]));
}
