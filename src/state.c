/*
 * state.c - the replica set on disk (see state.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "state.h"
#include "util.h"

int
state_load(const char *path, char (*names)[RING_NAME_LEN], int max, char *err,
    size_t errlen)
{
	json_error_t jerr;
	json_t *root, *list, *v;
	size_t i;
	int n = 0, k;

	if (access(path, F_OK) == -1 && errno == ENOENT)
		return 0;
	if ((root = json_load_file(path, 0, &jerr)) == NULL) {
		snprintf(err, errlen, "state file %s is not valid JSON (line "
		    "%d: %s); fix or remove it", path, jerr.line, jerr.text);
		return -1;
	}
	list = json_object_get(root, "replicas");
	if (!json_is_array(list)) {
		snprintf(err, errlen, "state file %s has no \"replicas\" list; "
		    "fix or remove it", path);
		goto fail;
	}
	json_array_foreach(list, i, v) {
		const char *name = json_string_value(v);

		if (name == NULL || !name_is_valid(name)) {
			snprintf(err, errlen, "state file %s: entry %zu is not "
			    "a valid replica name; fix or remove it", path, i);
			goto fail;
		}
		for (k = 0; k < n; k++)
			if (strcmp(names[k], name) == 0) {
				snprintf(err, errlen, "state file %s names "
				    "'%s' twice", path, name);
				goto fail;
			}
		if (n == max) {
			snprintf(err, errlen, "state file %s lists more than "
			    "%d replicas", path, max);
			goto fail;
		}
		snprintf(names[n++], RING_NAME_LEN, "%s", name);
	}
	json_decref(root);
	return n;
fail:
	json_decref(root);
	return -1;
}

int
state_save(const char *path, char (*names)[RING_NAME_LEN], int n, char *err,
    size_t errlen)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	json_t *root, *list;
	char *text = NULL;
	size_t len;
	int fd = -1, i, dfd;
	mode_t mask;

	list = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(list, json_string(names[i]));
	root = json_pack("{s:i, s:o}", "version", 1, "replicas", list);
	if (root == NULL || (text = json_dumps(root, JSON_INDENT(2))) ==
	    NULL) {
		json_decref(root);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_decref(root);
	len = strlen(text);

	/*
	 * A new file of a name nobody can guess, created here or not at all
	 * (mkstemp: O_EXCL), so that whoever may write the directory cannot
	 * have it write through a link of theirs.
	 */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >=
	    sizeof(tmp)) {
		tmp[0] = '\0';
		snprintf(err, errlen, "state file path too long");
		goto fail;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot create a file beside %s: %s",
		    path, strerror(errno));
		tmp[0] = '\0';
		goto fail;
	}
	/* mkstemp makes it 0600: make it what open(0644) would */
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0644 & ~mask) == -1 ||
	    write(fd, text, len) != (ssize_t)len ||
	    write(fd, "\n", 1) != 1 || fsync(fd) == -1) {
		snprintf(err, errlen, "cannot write %s: %s", tmp,
		    strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		snprintf(err, errlen, "cannot write %s: %s", tmp,
		    strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
		    strerror(errno));
		goto fail;
	}
	/* make the rename itself durable */
	snprintf(dir, sizeof(dir), "%s", path);
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) !=
	    -1) {
		fsync(dfd);
		close(dfd);
	}
	free(text);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	if (tmp[0] != '\0')
		unlink(tmp);
	free(text);
	return -1;
}
