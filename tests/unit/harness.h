/*
 * harness.h - a table of {name, function}, as memcached's testapp.c does.
 *
 * A test fails when any CHECK in it fails; the runner prints one line per
 * test and a closing "<suite>: N passed, N failed" line, and exits
 * non-zero on any failure.
 */
#ifndef RINGLB_TEST_HARNESS_H
#define RINGLB_TEST_HARNESS_H

#include <stdio.h>

static int harness_failed_checks;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "    %s:%d: CHECK(%s) failed\n",	\
		    __FILE__, __LINE__, #cond);				\
		harness_failed_checks++;				\
	}								\
} while (0)

#define CHECK_EQ_INT(a, b) do {						\
	long long va_ = (long long)(a), vb_ = (long long)(b);		\
	if (va_ != vb_) {						\
		fprintf(stderr, "    %s:%d: %s == %lld, expected %s "	\
		    "== %lld\n", __FILE__, __LINE__, #a, va_, #b, vb_);	\
		harness_failed_checks++;				\
	}								\
} while (0)

struct test_case {
	const char	*name;
	void		(*fn)(void);
};

static int
harness_run(const char *suite, const struct test_case *tests, size_t n)
{
	size_t i;
	int passed = 0, failed = 0, before;

	for (i = 0; i < n; i++) {
		before = harness_failed_checks;
		tests[i].fn();
		if (harness_failed_checks == before) {
			passed++;
			printf("  ok    %s\n", tests[i].name);
		} else {
			failed++;
			printf("  FAIL  %s\n", tests[i].name);
		}
	}
	printf("%s: %d passed, %d failed\n", suite, passed, failed);
	return failed ? 1 : 0;
}

#endif /* RINGLB_TEST_HARNESS_H */
