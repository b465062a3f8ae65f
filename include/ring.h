/*
 * ring.h - consistent-hash rings; pure code, no I/O.
 *
 * A ring maps a request key to one of its members.  It is a pure function
 * of the member names and the ring_config: the order in which members were
 * added never changes where a key goes, so two ringlb instances with the
 * same replicas route every key the same way.
 *
 * Member indices returned by ring_lookup() and ring_successors() are valid
 * until the next ring_add() or ring_remove().
 */
#ifndef RINGLB_RING_H
#define RINGLB_RING_H

#include <stddef.h>
#include <stdint.h>

enum ring_algo {
	RING_ALGO_TABLE = 0,	/* 2^21 equal arcs, each owned by rendezvous */
	RING_ALGO_HASH,		/* XXH3 virtual nodes, sorted, binary search */
	RING_ALGO_CLASSIC	/* the 512-slot teaching ring, linear probing */
};

#define RING_NAME_MAX		63	/* longest member name, bytes */
#define RING_NAME_LEN		(RING_NAME_MAX + 1)	/* its buffer, with the NUL */
#define RING_VNODES_DEFAULT	160
#define RING_VNODES_MAX		4096
#define RING_CLASSIC_SLOTS	512
#define RING_CLASSIC_VNODES	9	/* log2(512) virtual servers each */
#ifndef RING_TABLE_BITS		/* the fuzzer builds a smaller table */
#define RING_TABLE_BITS		21
#endif
#define RING_TABLE_SIZE		(1u << RING_TABLE_BITS)
#define RING_MEMBERS_MAX	4096

struct ring_config {
	enum ring_algo	algo;
	unsigned	vnodes;		/* points per member, RING_ALGO_HASH */
};

struct ring;

/* Parse "table" (alias "default"), "hash" or "classic"; -1 otherwise. */
int		 ring_algo_parse(const char *s, enum ring_algo *out);
const char	*ring_algo_name(enum ring_algo algo);

/*
 * The most members a ring of this config can place: the classic ring's
 * 512 slots hold 56 members of 9 virtual servers each; the others hold
 * RING_MEMBERS_MAX.
 */
int		 ring_capacity(const struct ring_config *cfg);

/* A new empty ring; NULL on bad config or no memory. */
struct ring	*ring_new(const struct ring_config *cfg);
void		 ring_free(struct ring *r);
/* A copy that changes independently of r; NULL on no memory. */
struct ring	*ring_clone(const struct ring *r);

/*
 * Add a member.  name is copied; data is the caller's and is returned by
 * ring_member_data().  Returns 0, or -1 with a reason in err (duplicate
 * name, bad name, ring full, no memory) and the ring unchanged.
 */
int		 ring_add(struct ring *r, const char *name, void *data,
		    char *err, size_t errlen);
/* Remove a member by name; 0, or -1 if it is not a member. */
int		 ring_remove(struct ring *r, const char *name);

int		 ring_count(const struct ring *r);
int		 ring_find(const struct ring *r, const char *name);
const char	*ring_member_name(const struct ring *r, int idx);
void		*ring_member_data(const struct ring *r, int idx);
size_t		 ring_points(const struct ring *r);	/* points or slots used */
size_t		 ring_memory(const struct ring *r);	/* bytes held */

/* The member owning key, or -1 when the ring is empty. */
int		 ring_lookup(const struct ring *r, const void *key, size_t len);

/*
 * The owner of key followed by the next distinct members met walking the
 * ring clockwise, at most max of them, written to out.  Returns how many.
 * Used to retry a request on the next replica.
 */
int		 ring_successors(const struct ring *r, const void *key,
		    size_t len, int *out, int max);

/*
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam):
 * the first member in key's ranking (its owner, then its successors)
 * whose load is under the cap ceil(factor * (total + 1) / members) - no
 * member ever takes a request that puts it over the cap.  load(data)
 * gives a member's load, total the sum of all.  out[0] is the choice, and
 * further members under the cap follow, for retries (at most max).
 * *displaced tells whether out[0] is not the key's owner.  Returns how
 * many were written, 0 when the ring is empty.
 */
int		 ring_lookup_bounded(const struct ring *r, const void *key,
		    size_t len, double factor, unsigned long total,
		    unsigned (*load)(const void *data), int *out, int max,
		    int *displaced);
/* The cap ring_lookup_bounded() holds members to. */
unsigned long	 ring_bounded_cap(const struct ring *r, double factor,
		    unsigned long total);

/*
 * Each member's exact share of the key space, in member index order, into
 * out (ring_count() doubles; they sum to 1).  Exact, not sampled: arc
 * lengths for the hash ring, arcs owned for the table, request ids 0..511
 * (one period of H) for the classic ring.
 */
void		 ring_shares(const struct ring *r, double *out);
/* The share of keys that changed owner in the last ring_add/remove. */
double		 ring_last_moved(const struct ring *r);

/*
 * Up to max ticks for drawing the ring, in order: each a position in
 * [0, 1) and the member index there.  Hash ring: its points (all when
 * they fit, else every k-th); classic: its occupied slots; table: the
 * owners of max arcs spread evenly (the table has no points as such).
 */
size_t		 ring_ticks(const struct ring *r, double *pos, int *member,
		    size_t max);
/* Where key falls on the ring, in [0, 1). */
double		 ring_key_position(const struct ring *r, const void *key,
		    size_t len);

/* The classic ring's formulas, exposed for tests and the analysis tool. */
uint32_t	 ring_classic_request_slot(uint64_t i);	/* H(i) mod 512 */
uint32_t	 ring_classic_vnode_slot(uint64_t i, uint32_t j); /* Phi(i,j) */
/* Classic ring: the member placed in slot (after probing), or -1. */
int		 ring_classic_slot_owner(const struct ring *r, unsigned slot);
/* The integer id the classic ring uses for a name or key. */
uint64_t	 ring_classic_id(const char *s, size_t len, int trailing);

#endif /* RINGLB_RING_H */
