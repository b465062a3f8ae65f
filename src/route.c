/*
 * route.c - route tables, their publication to workers, and the choice
 * of a replica for a request (see route.h).
 *
 * Reference counts are atomic: a table is let go by whichever thread
 * holds it last.  A worker counts its own transfers on a table in its
 * route_view without atomics, and holds one reference of the table for
 * all of them, so a request costs no atomic operation on the table.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "route.h"

#define ROUTE_RANKING	8	/* members looked at for bounded loads */
#define ROUTE_TRIES	64	/* compare-and-swap rounds: each one lost is
				   another worker's claim, see pick_bounded */

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ADD(x, n)	__atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
/* a count whose last release frees: what it guarded is seen whole */
#define RELEASE(x)	(__atomic_sub_fetch(&(x), 1, __ATOMIC_ACQ_REL) == 0)

struct route_stats *
route_stats_new(void)
{
	struct route_stats *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->refs = 1;
	return s;
}

void
route_stats_ref(struct route_stats *s)
{
	ADD(s->refs, 1);
}

void
route_stats_unref(struct route_stats *s)
{
	if (s != NULL && RELEASE(s->refs))
		free(s);
}

int
route_stats_take_suspect(struct route_stats *s)
{
	if (LOAD(s->suspect) == 0)
		return 0;
	return __atomic_exchange_n(&s->suspect, 0, __ATOMIC_RELAXED) != 0;
}

unsigned
route_stats_inflight(const struct route_stats *s)
{
	/* sequentially consistent: see route_inbox_pick() */
	return __atomic_load_n(&s->inflight, __ATOMIC_SEQ_CST);
}

uint64_t
route_stats_requests(const struct route_stats *s)
{
	return LOAD(s->requests);
}

uint64_t
route_stats_errors(const struct route_stats *s)
{
	return LOAD(s->errors);
}

/* --- members ---------------------------------------------------------- */

struct route_member *
route_member_new(const struct replica *rep, struct route_stats *stats,
    void *owner)
{
	struct route_member *m;

	if (rep->url == NULL || (m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	/* the table's own copy: the replica's may be set anew meanwhile */
	if ((m->url = curl_url_dup(rep->url)) == NULL) {
		free(m);
		return NULL;
	}
	m->refs = 1;
	memcpy(m->name, rep->name, sizeof(m->name));
	memcpy(m->host, rep->host, sizeof(m->host));
	m->port = rep->port;
	m->stats = stats;
	route_stats_ref(stats);
	m->owner = owner;
	return m;
}

void
route_member_unref(struct route_member *m)
{
	if (m == NULL || !RELEASE(m->refs))
		return;
	curl_url_cleanup(m->url);
	route_stats_unref(m->stats);
	free(m);
}

/* --- tables ----------------------------------------------------------- */

struct route_table *
route_table_new(const struct ring_config *cfg)
{
	struct route_table *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if ((t->ring = ring_new(cfg)) == NULL) {
		free(t);
		return NULL;
	}
	t->refs = 1;
	return t;
}

struct route_table *
route_table_clone(const struct route_table *t)
{
	struct route_table *c;
	int i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->ring = ring_clone(t->ring)) == NULL) {
		free(c);
		return NULL;
	}
	c->refs = 1;
	c->replaces = t->replaces;
	for (i = 0; i < ring_count(c->ring); i++)
		ADD(route_table_member(c, i)->refs, 1);
	return c;
}

void
route_table_ref(struct route_table *t)
{
	ADD(t->refs, 1);
}

void
route_table_unref(struct route_table *t)
{
	int i;

	if (t == NULL || !RELEASE(t->refs))
		return;
	for (i = 0; i < ring_count(t->ring); i++)
		route_member_unref(route_table_member(t, i));
	ring_free(t->ring);
	free(t);
}

struct route_member *
route_table_member(const struct route_table *t, int idx)
{
	return ring_member_data(t->ring, idx);
}

/* --- a worker's inbox --------------------------------------------------- */

void
route_inbox_publish(struct route_inbox *in, struct route_table *t)
{
	struct route_table *old;

	route_table_ref(t);
	/* sequentially consistent, as the counts in flight: see
	 * route_inbox_pick() */
	old = __atomic_exchange_n(&in->next, t, __ATOMIC_SEQ_CST);
	route_table_unref(old);
}

struct route_view *
route_inbox_view(struct route_inbox *in)
{
	struct route_table *t;
	struct route_view *v;

	if (__atomic_load_n(&in->next, __ATOMIC_RELAXED) == NULL)
		return in->cur;
	t = __atomic_exchange_n(&in->next, NULL, __ATOMIC_ACQ_REL);
	if (t == NULL)
		return in->cur;
	if ((v = malloc(sizeof(*v))) == NULL) {
		/* keep routing by the one held; the next request tries
		 * again, unless a newer table came meanwhile */
		struct route_table *none = NULL;

		if (!__atomic_compare_exchange_n(&in->next, &none, t, 0,
		    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			route_table_unref(t);
		return in->cur;
	}
	v->table = t;
	v->users = 1;
	if (in->cur != NULL)
		route_view_release(in->cur);
	in->cur = v;
	return v;
}

void
route_inbox_clear(struct route_inbox *in)
{
	route_table_unref(__atomic_exchange_n(&in->next, NULL,
	    __ATOMIC_ACQ_REL));
	if (in->cur != NULL)
		route_view_release(in->cur);
	in->cur = NULL;
}

void
route_view_hold(struct route_view *v)
{
	v->users++;
}

void
route_view_release(struct route_view *v)
{
	if (--v->users > 0)
		return;
	route_table_unref(v->table);
	free(v);
}

/* --- choosing ------------------------------------------------------------ */

static unsigned
member_load(const void *data)
{
	return LOAD(((const struct route_member *)data)->stats->inflight);
}

/* Count one more transfer on m if that keeps it at most cap. */
static int
claim_under(struct route_member *m, unsigned long cap)
{
	unsigned v = LOAD(m->stats->inflight);

	while (v < cap)
		if (__atomic_compare_exchange_n(&m->stats->inflight, &v, v + 1,
		    1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			return 1;
	return 0;
}

/*
 * Bounded loads.  The cap is ceil(factor * (total + 1) / members) with
 * factor > 1, so some member is always under it: were none, the total
 * would be at least members * cap > total.  A compare-and-swap can lose to
 * another worker's; the ranking is then read again with the new total
 * (and so a cap at least as high).
 */
static struct route_member *
pick_bounded(const struct route_table *t, const void *key, size_t len,
    double factor, const struct route_member *skip, int *displaced)
{
	struct route_member *m;
	unsigned long total, cap;
	int idx[ROUTE_RANKING], n, i, k, tries, disp;

	for (tries = 0; tries < ROUTE_TRIES; tries++) {
		total = 0;
		for (i = 0; i < ring_count(t->ring); i++)
			total += member_load(route_table_member(t, i));
		cap = ring_bounded_cap(t->ring, factor, total);
		n = ring_lookup_bounded(t->ring, key, len, factor, total,
		    member_load, idx, ROUTE_RANKING, &disp);
		for (k = 0; k < n; k++) {
			m = route_table_member(t, idx[k]);
			if (skip != NULL && m->stats == skip->stats)
				continue;
			if (claim_under(m, cap)) {
				*displaced = disp || k > 0;
				return m;
			}
		}
	}
	return NULL;
}

struct route_member *
route_pick(const struct route_table *t, const void *key, size_t len,
    double factor, const struct route_member *skip, int *displaced)
{
	struct route_member *m;
	int idx[2], n, i;

	*displaced = 0;
	if (t == NULL || ring_count(t->ring) == 0)
		return NULL;
	if (factor > 0)
		return pick_bounded(t, key, len, factor, skip, displaced);
	if (skip == NULL)
		m = route_table_member(t, ring_lookup(t->ring, key, len));
	else {
		/* a retry: the next distinct member clockwise */
		n = ring_successors(t->ring, key, len, idx, 2);
		for (m = NULL, i = 0; i < n && m == NULL; i++)
			if (route_table_member(t, idx[i])->stats !=
			    skip->stats)
				m = route_table_member(t, idx[i]);
		if (m == NULL)
			return NULL;
	}
	__atomic_add_fetch(&m->stats->inflight, 1, __ATOMIC_SEQ_CST);
	return m;
}

#define ROUTE_REPICKS	4	/* tables newer than the pick, in a row */

/*
 * Dekker's pattern, between this worker and the control plane: the worker
 * counts the transfer, then looks for a newer table; the control plane
 * publishes, then (later) reads the count; all four sequentially
 * consistent (on x86 the same instructions as without: locked
 * read-modify-writes and plain loads).  So either the worker sees the
 * newer table, lets its count go and chooses again, or the control plane
 * sees the count and keeps the replica until it is done.
 */
struct route_member *
route_inbox_pick(struct route_inbox *in, const void *key, size_t len,
    double factor, const struct route_member *skip, int *displaced,
    struct route_view **view)
{
	struct route_member *m = NULL;
	struct route_view *v;
	int i;

	for (i = 0; i < ROUTE_REPICKS; i++) {
		*view = v = route_inbox_view(in);
		if (v == NULL || (m = route_pick(v->table, key, len, factor,
		    skip, displaced)) == NULL)
			return NULL;
		if (__atomic_load_n(&in->next, __ATOMIC_SEQ_CST) == NULL)
			return m;
		route_done(m, ROUTE_DROPPED);
	}
	/* tables keep coming: this one is at most a few changes old */
	*view = v = route_inbox_view(in);
	if (v == NULL)
		return NULL;
	return route_pick(v->table, key, len, factor, skip, displaced);
}

void
route_done(struct route_member *m, enum route_result result)
{
	__atomic_sub_fetch(&m->stats->inflight, 1, __ATOMIC_RELAXED);
	if (result == ROUTE_ANSWERED)
		ADD(m->stats->requests, 1);
	else if (result == ROUTE_FAILED)
		ADD(m->stats->errors, 1);
}

void
route_suspect(struct route_member *m)
{
	__atomic_store_n(&m->stats->suspect, 1, __ATOMIC_RELAXED);
}
