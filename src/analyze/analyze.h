/*
 * analyze.h - the subcommands of ringlb-analyze.
 */
#ifndef RINGLB_ANALYZE_H
#define RINGLB_ANALYZE_H

int	analyze_ring(int argc, char **argv);
int	analyze_bounded(int argc, char **argv);
int	analyze_experiments(int argc, char **argv);

#endif /* RINGLB_ANALYZE_H */
