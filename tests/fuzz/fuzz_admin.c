/*
 * fuzz_admin.c - /add and /rm bodies.  Whatever the bytes, the answer is
 * a change that obeys every rule, or a 400/413 with a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_body.h"
#include "config.h"
#include "util.h"

/* Names starting with "s" exist. */
static int
exists(const char *name, void *arg)
{
	(void)arg;
	return name[0] == 's';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char names[CONFIG_REPLICAS_MAX][RING_NAME_LEN];
	struct admin_change ch = { 0, names, 0 };
	char err[512];
	int adding, replicas, code, i, j;

	if (size < 2)
		return 0;
	adding = data[0] & 1;
	replicas = data[1];
	err[0] = '\0';
	code = admin_body_parse((const char *)data + 2, size - 2, adding,
	    replicas, exists, NULL, &ch, err, sizeof(err));
	if (code != 0) {
		if ((code != 400 && code != 413) || err[0] == '\0')
			abort();
		return 0;
	}
	if (ch.n < 1 || ch.n > CONFIG_REPLICAS_MAX || ch.ngiven > ch.n ||
	    (!adding && ch.n > replicas))
		abort();
	for (i = 0; i < ch.ngiven; i++) {
		if (!name_is_valid(names[i]) ||
		    exists(names[i], NULL) == adding)
			abort();
		for (j = i + 1; j < ch.ngiven; j++)
			if (strcmp(names[i], names[j]) == 0)
				abort();
	}
	return 0;
}
