/*
 * log.c - leveled logging to stderr.
 *
 * Every line is "<time> <prog>[<pid>] <level>: <text>", written with one
 * write(2) so lines from several processes sharing a terminal never mix.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int log_verbosity = LOG_LEVEL_INFO;
static const char *log_prog = "ringlb";

void
log_init(const char *progname, int level)
{
	log_prog = progname;
	log_verbosity = level;
}

int
log_level_parse(const char *s)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static void
log_emit(const char *level, const char *fmt, va_list ap, int errnum)
{
	char line[2048], stamp[32];
	struct timespec ts;
	struct tm tm;
	int n, m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld] %s: ", stamp,
	    ts.tv_nsec / 1000000, log_prog, (long)getpid(), level);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n >= sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (errnum != 0)
		n += snprintf(line + n, sizeof(line) - n, ": %s",
		    strerror(errnum));
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (log_verbosity < LOG_LEVEL_WARN)
		return;
	va_start(ap, fmt);
	log_emit("warn", fmt, ap, saved);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	if (log_verbosity < LOG_LEVEL_WARN)
		return;
	va_start(ap, fmt);
	log_emit("warn", fmt, ap, 0);
	va_end(ap);
}

void
log_info_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit("info", fmt, ap, 0);
	va_end(ap);
}

void
log_debug_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit("debug", fmt, ap, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit("fatal", fmt, ap, saved);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit("fatal", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
