/*
 * mbox.c - a mailbox from any thread to one event loop (see mbox.h).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <event2/event.h>

#include "mbox.h"

TAILQ_HEAD(mbox_list, mbox_msg);

struct mbox {
	pthread_mutex_t		 lock;
	struct mbox_list	 msgs;		/* under lock */
	int			 fd;
	struct event		*ev;
	void			*arg;
};

/* Take every waiting message at once, then run them unlocked. */
static void
mbox_run(struct mbox *mb)
{
	struct mbox_list todo;
	struct mbox_msg *m;

	TAILQ_INIT(&todo);
	pthread_mutex_lock(&mb->lock);
	TAILQ_CONCAT(&todo, &mb->msgs, link);
	pthread_mutex_unlock(&mb->lock);
	while ((m = TAILQ_FIRST(&todo)) != NULL) {
		TAILQ_REMOVE(&todo, m, link);
		m->fn(m, mb->arg);
	}
}

static void
mbox_ready(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	(void)read(fd, &n, sizeof(n));
	mbox_run(arg);
}

struct mbox *
mbox_new(struct event_base *base, void *arg)
{
	struct mbox *mb;

	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return NULL;
	TAILQ_INIT(&mb->msgs);
	mb->arg = arg;
	if ((mb->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		free(mb);
		return NULL;
	}
	if ((mb->ev = event_new(base, mb->fd, EV_READ | EV_PERSIST,
	    mbox_ready, mb)) == NULL || event_add(mb->ev, NULL) == -1) {
		if (mb->ev != NULL)
			event_free(mb->ev);
		close(mb->fd);
		free(mb);
		return NULL;
	}
	pthread_mutex_init(&mb->lock, NULL);
	return mb;
}

void
mbox_post(struct mbox *mb, struct mbox_msg *msg)
{
	uint64_t one = 1;
	int was_empty;

	pthread_mutex_lock(&mb->lock);
	was_empty = TAILQ_EMPTY(&mb->msgs);
	TAILQ_INSERT_TAIL(&mb->msgs, msg, link);
	pthread_mutex_unlock(&mb->lock);
	/* one wake for a batch; the counter never fills (2^64 - 2) */
	if (was_empty)
		(void)write(mb->fd, &one, sizeof(one));
}

void
mbox_free(struct mbox *mb)
{
	if (mb == NULL)
		return;
	mbox_run(mb);
	event_free(mb->ev);
	close(mb->fd);
	pthread_mutex_destroy(&mb->lock);
	free(mb);
}
