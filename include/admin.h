/*
 * admin.h - ringlb's own endpoints: /rep, /add, /rm, /heartbeat, /metrics.
 */
#ifndef RINGLB_ADMIN_H
#define RINGLB_ADMIN_H

struct admin;
struct config;
struct evhttp_request;
struct metrics;
struct pool;
struct proxy;

struct admin	*admin_new(const struct config *cfg, struct pool *pool,
		    struct metrics *metrics, struct proxy *proxy);
void		 admin_free(struct admin *a);
/* Log which access rule guards /add and /rm. */
void		 admin_log_access(const struct admin *a);

void	admin_rep(struct admin *a, struct evhttp_request *req);
void	admin_add(struct admin *a, struct evhttp_request *req);
void	admin_rm(struct admin *a, struct evhttp_request *req);
void	admin_heartbeat(struct admin *a, struct evhttp_request *req);
void	admin_metrics(struct admin *a, struct evhttp_request *req);

#endif /* RINGLB_ADMIN_H */
