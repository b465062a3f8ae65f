/*
 * ring_vnode.c - RING_ALGO_HASH, memcached's proxy ring of virtual nodes.
 *
 * Every member contributes `vnodes` points, XXH3(name, seed = vnode
 * number); the points are kept sorted and a key goes to the first point
 * at or after XXH3(key), wrapping to the first point.  Ties between points
 * (astronomically rare) are broken by member name, so the result never
 * depends on insertion order.  The ring is changed in place: a new
 * member's points are merged into the sorted array, a leaving member's
 * taken out, each in time linear in the points.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ring.h"
#include "ring_impl.h"

#define VNODE_SPACE	18446744073709551616.0	/* 2^64, the hash space */

struct vnode_point {
	uint64_t	 hash;
	uint32_t	 member;
};

struct vnode {
	struct vnode_point	*points;
	size_t			 npoints;
	size_t			 points_cap;
};

/* qsort has no context argument in C11; the members being sorted are
 * carried in this file static for the length of one qsort call. */
static const struct ring_member *sort_members;

static int
point_cmp(const void *a, const void *b)
{
	const struct vnode_point *pa = a, *pb = b;

	if (pa->hash != pb->hash)
		return pa->hash < pb->hash ? -1 : 1;
	return strcmp(sort_members[pa->member].name,
	    sort_members[pb->member].name);
}

/* The points' order: by hash, ties by member name (see point_cmp). */
static int
point_before(const struct ring *r, const struct vnode_point *a,
    const struct vnode_point *b)
{
	if (a->hash != b->hash)
		return a->hash < b->hash;
	return strcmp(r->members[a->member].name,
	    r->members[b->member].name) < 0;
}

/*
 * The share of the keys member idx owns: point k owns the keys after
 * point k - 1, up to itself.  Summed in point order, as vnode_shares
 * sums every member's.
 */
static double
vnode_share(const struct vnode *v, uint32_t idx)
{
	double share = 0;
	size_t k;

	for (k = 0; k < v->npoints; k++) {
		uint64_t prev = v->points[(k + v->npoints - 1) %
		    v->npoints].hash;

		if (v->points[k].member != idx)
			continue;
		if (v->npoints == 1)
			share = 1;
		else
			share += (double)(v->points[k].hash - prev) /
			    VNODE_SPACE;
	}
	return share;
}

static int
vnode_init(struct ring *r)
{
	if (r->cfg.vnodes == 0 || r->cfg.vnodes > RING_VNODES_MAX)
		return -1;
	return (r->impl = calloc(1, sizeof(struct vnode))) == NULL ? -1 : 0;
}

static void
vnode_free(void *impl)
{
	struct vnode *v = impl;

	if (v == NULL)
		return;
	free(v->points);
	free(v);
}

static void *
vnode_clone(const struct ring *r)
{
	const struct vnode *v = r->impl;
	struct vnode *c;

	if ((c = malloc(sizeof(*c))) == NULL)
		return NULL;
	*c = *v;
	if (v->points == NULL)
		return c;
	if ((c->points = calloc(v->points_cap, sizeof(*c->points))) == NULL) {
		free(c);
		return NULL;
	}
	memcpy(c->points, v->points, v->npoints * sizeof(*c->points));
	return c;
}

/*
 * The ring after its last member (index nmembers - 1) was appended: its
 * own points are sorted, then merged into the sorted array from the back,
 * in place.  Linear in the points, where sorting them all again took a
 * loop-stalling 0.2 s at 200 members of 4096 vnodes; the order is the one
 * a whole sort gives, so where keys go does not depend on it.
 */
static int
vnode_add(struct ring *r)
{
	struct vnode *v = r->impl;
	struct vnode_point *pts, *mine;
	uint32_t m = (uint32_t)r->nmembers - 1, j, nv = r->cfg.vnodes;
	size_t n = v->npoints + nv, i, k;

	/* exact growth: the merge below is linear anyway, and a large
	 * realloc moves pages rather than bytes */
	if (n > v->points_cap) {
		if ((pts = realloc(v->points, n * sizeof(*pts))) == NULL)
			return -1;
		v->points = pts;
		v->points_cap = n;
	}
	if ((mine = malloc(nv * sizeof(*mine))) == NULL)
		return -1;
	for (j = 0; j < nv; j++) {
		mine[j].hash = XXH3_64bits_withSeed(r->members[m].name,
		    r->members[m].namelen, j);
		mine[j].member = m;
	}
	sort_members = r->members;
	qsort(mine, nv, sizeof(*mine), point_cmp);
	sort_members = NULL;

	pts = v->points;
	i = v->npoints;
	k = n;
	j = nv;
	while (j > 0) {
		if (i > 0 && point_before(r, &mine[j - 1], &pts[i - 1]))
			pts[--k] = pts[--i];
		else
			pts[--k] = mine[--j];
	}
	free(mine);
	v->npoints = n;
	r->last_moved = vnode_share(v, m);
	return 0;
}

/*
 * Member idx has just been taken out of r->members: its points go, the
 * others keep their order and take the member indices shifted down.  The
 * keys moved are those its points held.  Allocates nothing.
 */
static void
vnode_remove(struct ring *r, int idx)
{
	struct vnode *v = r->impl;
	size_t i, k = 0;

	r->last_moved = vnode_share(v, (uint32_t)idx);
	for (i = 0; i < v->npoints; i++) {
		struct vnode_point pt = v->points[i];

		if (pt.member == (uint32_t)idx)
			continue;
		if (pt.member > (uint32_t)idx)
			pt.member--;
		v->points[k++] = pt;
	}
	v->npoints = k;
}

/* Index of the first point with hash >= h, wrapping to 0. */
static size_t
vnode_position(const struct vnode *v, uint64_t h)
{
	size_t lo = 0, hi = v->npoints, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v->points[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == v->npoints ? 0 : lo;
}

static int
vnode_lookup(const struct ring *r, const void *key, size_t len)
{
	const struct vnode *v = r->impl;

	return (int)v->points[vnode_position(v, XXH3_64bits(key, len))].member;
}

static int
vnode_rank(const struct ring *r, const void *key, size_t len, int *out,
    int max)
{
	const struct vnode *v = r->impl;
	size_t k, pos = vnode_position(v, XXH3_64bits(key, len));
	int n = 0;

	for (k = 0; k < v->npoints && n < max; k++)
		n = ring_rank_add(out, n,
		    (int)v->points[(pos + k) % v->npoints].member);
	return n;
}

/* Arc lengths, exact. */
static void
vnode_shares(const struct ring *r, double *out)
{
	const struct vnode *v = r->impl;
	size_t k;

	for (k = 0; k < v->npoints; k++) {
		uint64_t prev = v->points[(k + v->npoints - 1) %
		    v->npoints].hash;
		uint64_t len = v->points[k].hash - prev;

		if (v->npoints == 1)
			out[v->points[k].member] = 1;
		else
			out[v->points[k].member] += (double)len / VNODE_SPACE;
	}
}

/* Its points: all when they fit, else every k-th. */
static size_t
vnode_ticks(const struct ring *r, double *pos, int *member, size_t max)
{
	const struct vnode *v = r->impl;
	size_t i, n = 0, step = (v->npoints + max - 1) / max;

	for (i = 0; i < v->npoints && n < max; i += step, n++) {
		pos[n] = (double)v->points[i].hash / VNODE_SPACE;
		member[n] = (int)v->points[i].member;
	}
	return n;
}

static size_t
vnode_points(const struct ring *r)
{
	return ((const struct vnode *)r->impl)->npoints;
}

static size_t
vnode_memory(const struct ring *r)
{
	const struct vnode *v = r->impl;

	return sizeof(*v) + v->points_cap * sizeof(v->points[0]);
}

static double
vnode_key_position(const void *key, size_t len)
{
	return (double)XXH3_64bits(key, len) / VNODE_SPACE;
}

const struct ring_ops ring_vnode_ops = {
	.init = vnode_init,
	.free = vnode_free,
	.clone = vnode_clone,
	.add = vnode_add,
	.remove = vnode_remove,
	.lookup = vnode_lookup,
	.rank = vnode_rank,
	.shares = vnode_shares,
	.ticks = vnode_ticks,
	.points = vnode_points,
	.memory = vnode_memory,
	.key_position = vnode_key_position,
};
