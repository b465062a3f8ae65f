/*
 * state.h - the replica set on disk, so it survives a restart.
 *
 * The file is JSON, {"version": 1, "replicas": ["server-1", ...]}, and is
 * only ever replaced whole: written to a temporary file beside it (of a
 * name nobody can guess, created by ringlb alone: mkstemp), fsync'ed,
 * renamed over the old one, and the directory fsync'ed.  A reader sees
 * the old set or the new one, never half of either.
 */
#ifndef RINGLB_STATE_H
#define RINGLB_STATE_H

#include <stddef.h>

#include "ring.h"

/*
 * Read the names into names (each 64 bytes).  Returns how many, 0 if the
 * file does not exist yet, or -1 with the reason in err (unreadable, not
 * the expected JSON, a bad or repeated name, more than max).
 */
int	state_load(const char *path, char (*names)[RING_NAME_LEN], int max, char *err,
	    size_t errlen);

/* Replace the file with these names; 0, or -1 with the reason in err. */
int	state_save(const char *path, char (*names)[RING_NAME_LEN], int n, char *err,
	    size_t errlen);

#endif /* RINGLB_STATE_H */
