/*
 * log.h - leveled logging to stderr, in the manner of relayd's log.c.
 *
 * The level is checked before anything is formatted, so a disabled
 * log_debug() on a hot path costs one comparison.
 */
#ifndef RINGLB_LOG_H
#define RINGLB_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

extern int log_verbosity;

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Set the program name shown in every line and the level to log at. */
void	log_init(const char *progname, int level);
/* Parse "error", "warn", "info" or "debug"; -1 on anything else. */
int	log_level_parse(const char *s);

void	log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);	/* + strerror */
void	log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void	log_info_(const char *fmt, ...) LOG_PRINTF(1, 2);
void	log_debug_(const char *fmt, ...) LOG_PRINTF(1, 2);
void	fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void	fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

#define log_info(...) do {						\
	if (log_verbosity >= LOG_LEVEL_INFO)				\
		log_info_(__VA_ARGS__);					\
} while (0)
#define log_debug(...) do {						\
	if (log_verbosity >= LOG_LEVEL_DEBUG)				\
		log_debug_(__VA_ARGS__);				\
} while (0)

#endif /* RINGLB_LOG_H */
