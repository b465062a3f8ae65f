/*
 * mbox.h - a mailbox from any thread to one event loop.
 *
 * Messages are the caller's, linked through the struct mbox_msg at their
 * start; mbox_post() may be called from any thread, and each message's fn
 * runs later on the thread of the mailbox's event_base, in the order
 * posted.  A mutex guards the list (a post and a take, never held while a
 * message runs) and an eventfd wakes the loop: the loop itself stays
 * single-threaded, with no locks of libevent's.
 */
#ifndef RINGLB_MBOX_H
#define RINGLB_MBOX_H

#include <sys/queue.h>

struct event_base;
struct mbox;

struct mbox_msg {
	TAILQ_ENTRY(mbox_msg)	 link;
	/* runs on the mailbox's loop; owns msg from then on */
	void			(*fn)(struct mbox_msg *msg, void *arg);
};

/* A mailbox whose messages run on base with arg; NULL on failure. */
struct mbox	*mbox_new(struct event_base *base, void *arg);
/* Hand msg over; it runs soon, on the mailbox's loop. */
void		 mbox_post(struct mbox *mb, struct mbox_msg *msg);
/*
 * Run what is waiting, then free the mailbox; nothing may post to it
 * after.  Call on the mailbox's own thread, or once that has stopped.
 */
void		 mbox_free(struct mbox *mb);

#endif /* RINGLB_MBOX_H */
