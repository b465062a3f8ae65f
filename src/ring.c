/*
 * ring.c - consistent-hash rings: the members, and the public API of
 * ring.h dispatched to the ring's algorithm.
 *
 * Each algorithm lives in a file of its own behind struct ring_ops
 * (ring_impl.h): ring_table.c (RING_ALGO_TABLE, the default: 2^21 arcs
 * owned by rendezvous hashing), ring_vnode.c (RING_ALGO_HASH: XXH3
 * virtual nodes, sorted) and ring_classic.c (RING_ALGO_CLASSIC: the
 * 512-slot teaching ring).  This file keeps what all of them share: the
 * members' names and data in the order they were added, the checks on a
 * new member, and bounded loads, which need only an algorithm's ranking.
 * A public call makes at most one call through the ops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "ring_impl.h"

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
	const struct ring_ops *ops;
	struct ring *r;

	switch (cfg->algo) {
	case RING_ALGO_TABLE:
		ops = &ring_table_ops;
		break;
	case RING_ALGO_HASH:
		ops = &ring_vnode_ops;
		break;
	case RING_ALGO_CLASSIC:
		ops = &ring_classic_ops;
		break;
	default:
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->cfg = *cfg;
	r->ops = ops;
	if (ops->init(r) == -1) {
		free(r);
		return NULL;
	}
	return r;
}

void
ring_free(struct ring *r)
{
	if (r == NULL)
		return;
	r->ops->free(r->impl);
	free(r->members);
	free(r);
}

/*
 * A copy of r that changes independently: the route snapshots are
 * immutable, so a membership change edits a clone.
 */
struct ring *
ring_clone(const struct ring *r)
{
	struct ring *c;

	if ((c = malloc(sizeof(*c))) == NULL)
		return NULL;
	*c = *r;
	c->members = NULL;
	if ((c->impl = r->ops->clone(r)) == NULL) {
		free(c);
		return NULL;
	}
	if (r->members != NULL) {
		if ((c->members = calloc(r->cap, sizeof(*c->members))) ==
		    NULL) {
			ring_free(c);
			return NULL;
		}
		memcpy(c->members, r->members,
		    r->nmembers * sizeof(*c->members));
	}
	return c;
}

int
ring_add(struct ring *r, const char *name, void *data, char *err,
    size_t errlen)
{
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
	m = &r->members[r->nmembers];
	memcpy(m->name, name, len + 1);
	m->namelen = len;
	m->data = data;
	r->nmembers++;
	if (r->ops->add(r) == -1) {
		r->nmembers--;
		goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
ring_remove(struct ring *r, const char *name)
{
	int idx = ring_find(r, name);

	if (idx == -1)
		return -1;
	memmove(&r->members[idx], &r->members[idx + 1],
	    (r->nmembers - idx - 1) * sizeof(r->members[0]));
	r->nmembers--;
	r->ops->remove(r, idx);
	return 0;
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
	return r->ops->points(r);
}

size_t
ring_memory(const struct ring *r)
{
	return sizeof(*r) + (size_t)r->cap * sizeof(r->members[0]) +
	    r->ops->memory(r);
}

int
ring_lookup(const struct ring *r, const void *key, size_t len)
{
	if (r->nmembers == 0)
		return -1;
	return r->ops->lookup(r, key, len);
}

int
ring_successors(const struct ring *r, const void *key, size_t len, int *out,
    int max)
{
	if (r->nmembers == 0 || max <= 0)
		return 0;
	if (max > r->nmembers)
		max = r->nmembers;
	return r->ops->rank(r, key, len, out, max);
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
	int rank[RING_RANK_MAX], n, i, k = 0, j, least = -1;
	unsigned long cap = ring_bounded_cap(r, factor, total);

	*displaced = 0;
	if (r->nmembers == 0 || max <= 0)
		return 0;
	n = ring_successors(r, key, len, rank, RING_RANK_MAX);
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
		k = ring_rank_add(out, k, rank[i]);
	return k;
}

void
ring_shares(const struct ring *r, double *out)
{
	int i;

	for (i = 0; i < r->nmembers; i++)
		out[i] = 0;
	if (r->nmembers > 0)
		r->ops->shares(r, out);
}

double
ring_last_moved(const struct ring *r)
{
	return r->last_moved;
}

size_t
ring_ticks(const struct ring *r, double *pos, int *member, size_t max)
{
	if (r->nmembers == 0 || max == 0)
		return 0;
	return r->ops->ticks(r, pos, member, max);
}

double
ring_key_position(const struct ring *r, const void *key, size_t len)
{
	return r->ops->key_position(key, len);
}
