/*
 * frontend.h - the HTTP front end: ringlb's own endpoints, request keys,
 * and handing everything else to the proxy.
 */
#ifndef RINGLB_FRONTEND_H
#define RINGLB_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct ctl_port;
struct event_base;
struct fe_share;
struct frontend;
struct gate_stats;
struct proxy;

/*
 * The listening socket on cfg->listen_*, which the workers' front ends
 * share; -1 with the reason in err (another program listens there,
 * another ringlb too).
 */
int		 frontend_listen(const struct config *cfg, char *err,
		    size_t errlen);
/*
 * A worker's front end: accept on listen_fd (not closed by the front end),
 * proxy what is not ringlb's own, hand ringlb's own endpoints to port.
 * Client connections are counted in clients, which the front ends of all
 * workers share.  NULL with the reason in err.
 */
struct frontend	*frontend_new(struct event_base *base, const struct config *cfg,
		    int listen_fd, struct proxy *proxy, struct ctl_port *port,
		    struct gate_stats *clients, char *err, size_t errlen);
/*
 * How the front ends of n workers take turns at the listening socket:
 * made before any accepts, freed after they are all freed.  Each joins as
 * slot i (0 <= i < n), with wake(arg) making its loop call frontend_turn
 * soon, from whatever thread calls wake (-1 when out of memory).  A
 * front end that joins none takes every connection it can.
 */
struct fe_share	*frontend_share_new(int n);
void		 frontend_share_free(struct fe_share *s);
/* The connections slot i has open; those it took out of turn, ever. */
unsigned	 frontend_share_conns(struct fe_share *s, int i);
uint64_t	 frontend_share_out_of_turn(struct fe_share *s, int i);
int		 frontend_share_join(struct frontend *fe, struct fe_share *s,
		    int i, void (*wake)(void *), void *arg);
/* On fe's loop, when woken: accept again if it is fe's turn. */
void		 frontend_turn(struct frontend *fe);
/*
 * Shutting down, in two steps.  Stop accepting: this worker's listener is
 * freed (the socket is its owner's to shut).  Stop: idle connections are
 * closed, requests arriving have --stop-grace to arrive in full (then a
 * 503), each connection closes after its answer; accepting stops too if
 * it has not.
 */
void		 frontend_stop_accepting(struct frontend *fe);
void		 frontend_stop(struct frontend *fe);
/* Client connections with a request arriving or being answered. */
unsigned	 frontend_busy(const struct frontend *fe);
void		 frontend_free(struct frontend *fe);

#endif /* RINGLB_FRONTEND_H */
