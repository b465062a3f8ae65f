/*
 * admin_body.h - the rules for /add and /rm bodies, as pure code (no I/O),
 * so they can be tested and fuzzed on their own.
 */
#ifndef RINGLB_ADMIN_BODY_H
#define RINGLB_ADMIN_BODY_H

#include <stddef.h>

#include "ring.h"

#define ADMIN_BODY_MAX	(64 * 1024)

struct admin_change {
	long	  n;
	char	(*names)[RING_NAME_LEN];	/* the caller's array */
	int	  ngiven;			/* hostnames given */
};

/*
 * Check {"n": N, "hostnames": [...]} by the spec's rules: /add's when
 * adding, else /rm's.  replicas is how many there are; exists(name, arg)
 * tells whether a name is taken.  names must hold CONFIG_REPLICAS_MAX
 * entries.  Returns 0 with ch filled, or the HTTP status (400, 413) with
 * the reason in err.
 */
int	admin_body_parse(const char *body, size_t len, int adding, int replicas,
	    int (*exists)(const char *name, void *arg), void *arg,
	    struct admin_change *ch, char *err, size_t errlen);

#endif /* RINGLB_ADMIN_BODY_H */
