/*
 * ringlb-analyze - measures what ringlb's rings do, with the same ring
 * code ringlb runs.
 *
 *   ringlb-analyze ring [--algo A] [--replicas N[,N...]] [--vnodes V] [--json]
 *   ringlb-analyze load --url URL [--requests N] [--concurrency C] ...
 */
#include <stdio.h>
#include <string.h>

#include "analyze.h"
#include "load.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ringlb-analyze COMMAND [options]\n"
	    "\n"
	    "commands:\n"
	    "  ring   exact key-space shares, keys moved by adding or removing "
	    "a replica,\n"
	    "         memory, lookup and rebuild times of a ring\n"
	    "  bounded  in-flight load and displaced requests under "
	    "--balance-factor,\n         simulated with Zipf-skewed keys\n"
	    "  load   requests with request ids to a running ringlb: how "
	    "many each replica\n         served, errors, latency\n"
	    "  experiments  the classic assignment's analysis (A-1 to A-4) "
	    "against real\n         ringlb instances: CSV and PNG charts\n"
	    "\n'ringlb-analyze COMMAND --help' tells more.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "ring") == 0)
		return analyze_ring(argc - 1, argv + 1);
	if (strcmp(argv[1], "bounded") == 0)
		return analyze_bounded(argc - 1, argv + 1);
	if (strcmp(argv[1], "experiments") == 0)
		return analyze_experiments(argc - 1, argv + 1);
	if (strcmp(argv[1], "load") == 0)
		return analyze_load(argc - 1, argv + 1);
	fprintf(stderr, "ringlb-analyze: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
