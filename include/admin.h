/*
 * admin.h - ringlb's own endpoints: /rep, /add, /rm, /heartbeat, /metrics,
 * /status and /map_request, answered on the main thread for the workers
 * (ctl.h).
 */
#ifndef RINGLB_ADMIN_H
#define RINGLB_ADMIN_H

struct admin;
struct config;
struct ctl_req;
struct pool;
struct workers;

struct admin	*admin_new(const struct config *cfg, struct pool *pool);
/* Whose counts /metrics and /status sum. */
void		 admin_set_workers(struct admin *a, struct workers *ws);
void		 admin_free(struct admin *a);
/* Log which access rule guards /add and /rm. */
void		 admin_log_access(const struct admin *a);

/* ctl_new's handler: each request to its endpoint. */
void	admin_serve(void *a, struct ctl_req *req);

void	admin_rep(struct admin *a, struct ctl_req *req);
void	admin_add(struct admin *a, struct ctl_req *req);
void	admin_rm(struct admin *a, struct ctl_req *req);
void	admin_heartbeat(struct admin *a, struct ctl_req *req);
void	admin_metrics(struct admin *a, struct ctl_req *req);
void	admin_map_request(struct admin *a, struct ctl_req *req);
void	admin_status(struct admin *a, struct ctl_req *req);

#endif /* RINGLB_ADMIN_H */
