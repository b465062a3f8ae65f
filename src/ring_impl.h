/*
 * ring_impl.h - what ring.c shares with the files of its algorithms
 * (ring_table.c, ring_vnode.c, ring_classic.c); nothing outside them
 * includes it.
 *
 * ring.c owns the members and the public API; each algorithm owns its own
 * state, reached through r->impl, and is reached through struct ring_ops,
 * chosen once by ring_new() from cfg->algo, HAProxy's lb_chash.c /
 * lb_map.c split behind struct lbprm.
 */
#ifndef RINGLB_RING_IMPL_H
#define RINGLB_RING_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#define RING_RANK_MAX	64	/* longest ranking ring_successors gives */

struct ring_member {
	char		 name[RING_NAME_LEN];
	size_t		 namelen;
	void		*data;
};

struct ring_ops;

struct ring {
	struct ring_config	 cfg;
	const struct ring_ops	*ops;
	void			*impl;		/* the algorithm's state */
	struct ring_member	*members;
	int			 nmembers;
	int			 cap;
	double			 last_moved;	/* set by ops->add, remove */
};

/*
 * An algorithm.  Member indices are those of r->members; an algorithm
 * that keeps something per member keeps it in its own state, in the same
 * order.  All but init find that state in r->impl, where init put it.
 * Only add and remove change a ring: the others may be called on a ring
 * that other threads read too.
 */
struct ring_ops {
	/* r->impl for r->cfg; -1 on bad config or no memory */
	int	 (*init)(struct ring *r);
	void	 (*free)(void *impl);
	/* a copy of r->impl that changes on its own; NULL on no memory */
	void	*(*clone)(const struct ring *r);

	/*
	 * r->members[r->nmembers - 1] has just been appended: place it and
	 * set r->last_moved.  -1 on no memory, with the state unchanged
	 * (ring.c then takes the member back out).
	 */
	int	 (*add)(struct ring *r);
	/*
	 * Member idx has just been taken out of r->members, those after it
	 * shifted down: forget it and set r->last_moved.  Cannot fail.
	 */
	void	 (*remove)(struct ring *r, int idx);

	/* The rest only on a ring with members. */
	int	 (*lookup)(const struct ring *r, const void *key, size_t len);
	/* ring_successors(), with 0 < max <= r->nmembers */
	int	 (*rank)(const struct ring *r, const void *key, size_t len,
		    int *out, int max);
	/* out[] zeroed by the caller */
	void	 (*shares)(const struct ring *r, double *out);
	/* ring_ticks(), with max > 0 */
	size_t	 (*ticks)(const struct ring *r, double *pos, int *member,
		    size_t max);

	/* Also on an empty ring. */
	size_t	 (*points)(const struct ring *r);
	size_t	 (*memory)(const struct ring *r);	/* bytes of r->impl */
	double	 (*key_position)(const void *key, size_t len);
};

/* Append member to out[0..n) unless it is there; the new count. */
static inline int
ring_rank_add(int *out, int n, int member)
{
	int k;

	for (k = 0; k < n; k++)
		if (out[k] == member)
			return n;
	out[n] = member;
	return n + 1;
}

extern const struct ring_ops	ring_table_ops;
extern const struct ring_ops	ring_vnode_ops;
extern const struct ring_ops	ring_classic_ops;

#endif /* RINGLB_RING_IMPL_H */
