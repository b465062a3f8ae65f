/*
 * health.h - heartbeats: GET /heartbeat to replicas, on their own libcurl
 * multi handle so they never queue behind proxied traffic.
 */
#ifndef RINGLB_HEALTH_H
#define RINGLB_HEALTH_H

struct config;
struct event_base;
struct health;
struct replica;

/* ok is 1 for a 200 answer; why says what went wrong otherwise. */
typedef void (*health_result_cb)(struct replica *rep, int ok,
    const char *why, void *arg);

struct health	*health_new(struct event_base *base, const struct config *cfg,
		    health_result_cb result, void *arg);
void		 health_free(struct health *h);

/* Send one heartbeat to rep unless one is already out; the result comes
 * back through the result callback, from the event loop. */
void		 health_check(struct health *h, struct replica *rep);
/* Cancel rep's heartbeat and release what it holds; before freeing rep. */
void		 health_forget(struct health *h, struct replica *rep);

#endif /* RINGLB_HEALTH_H */
