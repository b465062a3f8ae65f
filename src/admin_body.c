/*
 * admin_body.c - the rules for /add and /rm bodies (see admin_body.h).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "admin_body.h"
#include "config.h"
#include "ring.h"
#include "util.h"

/*
 * Parse and check {"n": N, "hostnames": [...]} as the spec says; the
 * first rule broken is the one reported.
 */
int
admin_body_parse(const char *body, size_t len, int adding, int replicas,
    int (*exists)(const char *name, void *arg), void *arg,
    struct admin_change *ch, char *err, size_t errlen)
{
	const char *example = adding ? "{\"n\": 2, \"hostnames\": [\"S5\"]}" :
	    "{\"n\": 1, \"hostnames\": [\"S5\"]}";
	json_error_t jerr;
	json_t *root, *jn, *hosts, *v;
	const char *key;
	size_t i;
	int k;

	ch->n = 0;
	ch->ngiven = 0;
	if (len > ADMIN_BODY_MAX) {
		snprintf(err, errlen, "the body is over %d bytes",
		    ADMIN_BODY_MAX);
		return 413;
	}
	/* {"n": 1, "n": 2} is a mistake to point out, not to guess at */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "the body must be JSON such as %s (%s)",
		    example, len == 0 ? "it is empty" : jerr.text);
		return 400;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "the body must be a JSON object such "
		    "as %s", example);
		goto fail;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "n") != 0 && strcmp(key, "hostnames") != 0) {
			snprintf(err, errlen, "unknown field '%.64s': the "
			    "body takes \"n\" and \"hostnames\", e.g. %s", key,
			    example);
			goto fail;
		}
	}
	jn = json_object_get(root, "n");
	if (!json_is_integer(jn) || json_integer_value(jn) < 1) {
		snprintf(err, errlen, "\"n\" must be a positive whole number "
		    "of replicas to %s, e.g. %s", adding ? "add" : "remove",
		    example);
		goto fail;
	}
	if (json_integer_value(jn) > CONFIG_REPLICAS_MAX) {
		snprintf(err, errlen, "\"n\" is %lld; ringlb manages at most "
		    "%d replicas", (long long)json_integer_value(jn),
		    CONFIG_REPLICAS_MAX);
		goto fail;
	}
	ch->n = (long)json_integer_value(jn);
	hosts = json_object_get(root, "hostnames");
	if (hosts != NULL && !json_is_array(hosts)) {
		snprintf(err, errlen, "\"hostnames\" must be a list of "
		    "names, e.g. %s", example);
		goto fail;
	}
	if (hosts != NULL && (long)json_array_size(hosts) > ch->n) {
		snprintf(err, errlen, adding ?
		    "Length of hostname list is more than newly added "
		    "instances" :
		    "Length of hostname list is more than removable instances");
		goto fail;
	}
	if (!adding && ch->n > replicas) {
		snprintf(err, errlen, "n is %ld but there are only %d "
		    "replicas to remove", ch->n, replicas);
		goto fail;
	}
	json_array_foreach(hosts, i, v) {
		const char *name = json_string_value(v);

		if (name == NULL) {
			snprintf(err, errlen, "hostnames[%zu] must be a "
			    "string", i);
			goto fail;
		}
		if (*name == '\0') {
			snprintf(err, errlen, "hostnames[%zu] is empty", i);
			goto fail;
		}
		if (strlen(name) > RING_NAME_MAX) {
			snprintf(err, errlen, "hostnames[%zu] is longer than "
			    "%d characters", i, RING_NAME_MAX);
			goto fail;
		}
		if (!name_is_valid(name)) {
			snprintf(err, errlen, "hostname '%s' must be letters, "
			    "digits, spaces, '_', '.' and '-', starting with a "
			    "letter or digit and not ending with a space",
			    name);
			goto fail;
		}
		for (k = 0; k < ch->ngiven; k++)
			if (strcmp(ch->names[k], name) == 0) {
				snprintf(err, errlen, "hostname '%s' is "
				    "given twice", name);
				goto fail;
			}
		if (adding && exists(name, arg)) {
			snprintf(err, errlen, "hostname '%s' is already a "
			    "replica; GET /rep lists them", name);
			goto fail;
		}
		if (!adding && !exists(name, arg)) {
			snprintf(err, errlen, "hostname '%s' is not a "
			    "replica; GET /rep lists them", name);
			goto fail;
		}
		snprintf(ch->names[ch->ngiven++], RING_NAME_LEN, "%s", name);
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return 400;
}

