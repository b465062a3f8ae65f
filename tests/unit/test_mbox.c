/*
 * test_mbox.c - the mailbox between threads: every message posted from
 * several threads runs once, on the loop's thread, in each poster's order.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "harness.h"
#include "mbox.h"

#define POSTERS		4
#define PER_POSTER	20000

struct msg {
	struct mbox_msg	 m;
	int		 from;
	int		 seq;
};

struct sink {
	struct event_base	*base;
	pthread_t		 loop_thread;
	int			 last[POSTERS];
	long			 ran;
	long			 out_of_order;
	long			 wrong_thread;
	long			 want;
};

static struct mbox *box;

static void
on_msg(struct mbox_msg *m, void *arg)
{
	struct msg *msg = (struct msg *)m;
	struct sink *s = arg;

	if (!pthread_equal(pthread_self(), s->loop_thread))
		s->wrong_thread++;
	if (msg->seq != s->last[msg->from] + 1)
		s->out_of_order++;
	s->last[msg->from] = msg->seq;
	free(msg);
	if (++s->ran == s->want && s->base != NULL)
		event_base_loopbreak(s->base);
}

static void *
poster(void *arg)
{
	int from = (int)(long)arg, i;
	struct msg *msg;

	for (i = 0; i < PER_POSTER; i++) {
		if ((msg = calloc(1, sizeof(*msg))) == NULL)
			abort();
		msg->m.fn = on_msg;
		msg->from = from;
		msg->seq = i;
		mbox_post(box, &msg->m);
	}
	return NULL;
}

/* A deadline, so that a lost message fails the test instead of hanging. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void
test_many_posters(void)
{
	static struct sink s;
	struct timeval ten = { 10, 0 };
	pthread_t t[POSTERS];
	struct event *deadline;
	int i;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < POSTERS; i++)
		s.last[i] = -1;
	s.want = (long)POSTERS * PER_POSTER;
	s.base = event_base_new();
	s.loop_thread = pthread_self();
	box = mbox_new(s.base, &s);
	CHECK(box != NULL);
	deadline = evtimer_new(s.base, on_deadline, s.base);
	evtimer_add(deadline, &ten);
	for (i = 0; i < POSTERS; i++)
		pthread_create(&t[i], NULL, poster, (void *)(long)i);
	event_base_dispatch(s.base);
	for (i = 0; i < POSTERS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(s.ran, s.want);
	CHECK_EQ_INT(s.out_of_order, 0);
	CHECK_EQ_INT(s.wrong_thread, 0);
	event_free(deadline);
	mbox_free(box);
	event_base_free(s.base);
}

/* What is still waiting when the mailbox is freed runs then. */
static void
test_free_runs_the_rest(void)
{
	static struct sink s;
	struct msg *msg;
	int i;

	memset(&s, 0, sizeof(s));
	s.last[0] = -1;
	s.want = 3;
	s.loop_thread = pthread_self();
	s.base = NULL;
	{
		struct event_base *base = event_base_new();

		box = mbox_new(base, &s);
		for (i = 0; i < 3; i++) {
			msg = calloc(1, sizeof(*msg));
			msg->m.fn = on_msg;
			msg->seq = i;
			mbox_post(box, &msg->m);
		}
		CHECK_EQ_INT(s.ran, 0);
		mbox_free(box);
		CHECK_EQ_INT(s.ran, 3);
		CHECK_EQ_INT(s.out_of_order, 0);
		event_base_free(base);
	}
}

static const struct test_case tests[] = {
	{ "messages from 4 threads each run once, in order, on the loop",
	  test_many_posters },
	{ "freeing the mailbox runs what is waiting", test_free_runs_the_rest },
};

int
main(void)
{
	return harness_run("mbox", tests, sizeof(tests) / sizeof(tests[0]));
}
