/*
 * experiments.c - "ringlb-analyze experiments --out DIR": the classic
 * assignment's analysis, run against real ringlb instances on loopback.
 *
 *   A-1  10,000 requests over 3 replicas: requests per replica
 *   A-2  N = 2..6: mean and spread of the requests per replica
 *   A-3  a replica killed under load: requests per replica over time,
 *        with the kill, the eviction, the respawn and the re-admission
 *   A-4  for the classic ring, the default ring and the
 *        bounded-load ring side by side
 *
 * Each experiment writes its data as CSV and a chart as PNG (gnuplot).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "analyze.h"
#include "load.h"
#include "util.h"
#include "zipf.h"

#define EXP_REQUESTS	10000
#define EXP_CONCURRENCY	64

struct lb {
	pid_t	 pid;
	int	 port;
	char	 base[64];
};

struct variant {
	const char	*name;		/* in CSV and charts */
	const char	*args[4];	/* extra ringlb options */
};

static const struct variant variants[] = {
	{ "classic", { "--ring", "classic", NULL } },
	{ "default", { NULL } },
	{ "bounded", { "--balance-factor", "1.25", NULL } },
};
#define NVARIANTS	(sizeof(variants) / sizeof(variants[0]))

static char ringlb_bin[PATH_MAX];
static char outdir[PATH_MAX];

static size_t
to_buf(char *d, size_t s, size_t n, void *arg)
{
	char **pp = arg;
	size_t len = s * n, have = *pp ? strlen(*pp) : 0;
	char *p = realloc(*pp, have + len + 1);

	if (p == NULL)
		return 0;
	memcpy(p + have, d, len);
	p[have + len] = '\0';
	*pp = p;
	return len;
}

/* GET url; the body (malloc'd) in *body; the status, or 0. */
static long
http_get(const char *url, char **body)
{
	CURL *e = curl_easy_init();
	long code = 0;

	*body = NULL;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, to_buf);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(e);
	return code;
}

static void
lb_stop(struct lb *lb)
{
	int i, status;

	if (lb->pid <= 0)
		return;
	kill(lb->pid, SIGTERM);
	for (i = 0; i < 200; i++) {
		if (waitpid(lb->pid, &status, WNOHANG) == lb->pid) {
			lb->pid = 0;
			return;
		}
		usleep(50000);
	}
	kill(lb->pid, SIGKILL);
	waitpid(lb->pid, &status, 0);
	lb->pid = 0;
}

/* Start ringlb with n replicas (and extra options); wait until all up. */
static int
lb_start(struct lb *lb, int n, const struct variant *v, const char *tag)
{
	char listen[64], count[16], logpath[PATH_MAX + 64], *body;
	const char *argv[16];
	double deadline;
	int k = 0, i, fd;
	uint16_t port;

	if (free_loopback_port(&port) == -1)
		return -1;
	lb->port = port;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", lb->port);
	snprintf(count, sizeof(count), "%d", n);
	snprintf(lb->base, sizeof(lb->base), "http://127.0.0.1:%d", lb->port);
	snprintf(logpath, sizeof(logpath), "%s/logs/%s.log", outdir, tag);
	argv[k++] = ringlb_bin;
	argv[k++] = "--listen";
	argv[k++] = listen;
	argv[k++] = "--replicas";
	argv[k++] = count;
	/* the experiments' tables and charts (docs/experiments) name the
	 * replicas server-1..N, whatever ringlb's default style */
	argv[k++] = "--name-style";
	argv[k++] = "dns";
	for (i = 0; v != NULL && v->args[i] != NULL; i++)
		argv[k++] = v->args[i];
	argv[k] = NULL;
	if ((lb->pid = fork()) == -1)
		return -1;
	if (lb->pid == 0) {
		if ((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644)) !=
		    -1) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		execv(ringlb_bin, (char *const *)argv);
		_exit(127);
	}
	deadline = now_s() + 15;
	while (now_s() < deadline) {
		char url[128];
		json_t *j;

		snprintf(url, sizeof(url), "%s/heartbeat", lb->base);
		if (http_get(url, &body) == 200 && body != NULL &&
		    (j = json_loads(body, 0, NULL)) != NULL) {
			int healthy = (int)json_integer_value(json_object_get(j,
			    "healthy"));

			json_decref(j);
			free(body);
			if (healthy == n)
				return 0;
		} else
			free(body);
		usleep(20000);
	}
	fprintf(stderr, "ringlb-analyze: ringlb (%s) did not bring up %d "
	    "replicas; see %s\n", tag, n, logpath);
	lb_stop(lb);
	return -1;
}

/* 10,000 requests with ids 0..9999 to /home; the counts, sorted by name. */
static int
run_load(struct lb *lb, struct load_result *res, long requests, int conc,
    void (*tick)(double, void *), void *arg)
{
	struct load_opts o;
	char url[128];

	snprintf(url, sizeof(url), "%s/home", lb->base);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.requests = requests;
	o.concurrency = conc;
	o.timeout_ms = 10000;
	o.tick = tick;
	o.tick_arg = arg;
	return load_run(&o, res);
}

static long
count_of(const struct load_result *res, const char *name)
{
	int i;

	for (i = 0; i < res->nnames; i++)
		if (strcmp(res->names[i], name) == 0)
			return res->counts[i];
	return 0;
}

static FILE *
out_file(const char *name)
{
	char path[PATH_MAX + 64];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	if ((fp = fopen(path, "w")) == NULL)
		fprintf(stderr, "ringlb-analyze: cannot write %s: %s\n", path,
		    strerror(errno));
	return fp;
}

static int
gnuplot(const char *script_name, const char *script)
{
	char cmd[2 * PATH_MAX + 64];
	FILE *fp = out_file(script_name);

	if (fp == NULL)
		return -1;
	fputs(script, fp);
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "cd '%s' && gnuplot '%s'", outdir,
	    script_name);
	if (system(cmd) != 0) {
		fprintf(stderr, "ringlb-analyze: gnuplot failed on %s/%s\n",
		    outdir, script_name);
		return -1;
	}
	return 0;
}

/* --- A-1 and the distribution part of A-4 ----------------------------- */

static int
exp_distribution(void)
{
	FILE *fp = out_file("a1.csv"), *fp4 = out_file("a4_distribution.csv");
	struct load_result res;
	struct lb lb;
	size_t v;
	int i;

	if (fp == NULL || fp4 == NULL)
		return -1;
	fprintf(fp, "replica,requests\n");
	fprintf(fp4, "replica,classic,default,bounded\n");
	long counts[NVARIANTS][3];

	for (v = 0; v < NVARIANTS; v++) {
		char tag[64];

		snprintf(tag, sizeof(tag), "a1-%s", variants[v].name);
		if (lb_start(&lb, 3, &variants[v], tag) == -1 ||
		    run_load(&lb, &res, EXP_REQUESTS, EXP_CONCURRENCY, NULL,
		    NULL) == -1) {
			lb_stop(&lb);
			return -1;
		}
		lb_stop(&lb);
		for (i = 0; i < 3; i++) {
			char name[32];

			snprintf(name, sizeof(name), "server-%d", i + 1);
			counts[v][i] = count_of(&res, name);
		}
		printf("  A-1 %-8s server-1 %ld, server-2 %ld, server-3 %ld, "
		    "busiest/mean %.3f, errors %ld\n", variants[v].name,
		    counts[v][0], counts[v][1], counts[v][2],
		    load_max_over_mean(&res), res.errors);
		load_free(&res);
	}
	for (i = 0; i < 3; i++) {
		fprintf(fp, "server-%d,%ld\n", i + 1, counts[1][i]);
		fprintf(fp4, "server-%d,%ld,%ld,%ld\n", i + 1, counts[0][i],
		    counts[1][i], counts[2][i]);
	}
	fclose(fp);
	fclose(fp4);
	return gnuplot("a1.gp",
	    "set terminal pngcairo size 800,500 font 'DejaVu Sans,11'\n"
	    "set output 'a1.png'\n"
	    "set datafile separator ','\n"
	    "set title 'A-1: 10,000 requests (ids 0..9999) over 3 replicas, "
	    "default ring'\n"
	    "set ylabel 'requests served'\nset yrange [0:*]\n"
	    "set style fill solid 0.8 border -1\nset boxwidth 0.6\n"
	    "set grid ytics\nunset key\n"
	    "plot 'a1.csv' every ::1 using 0:2:xtic(1) with boxes lc rgb "
	    "'#3b7dd8', '' every ::1 using 0:($2+120):(sprintf('%d',$2)) "
	    "with labels, 10000.0/3 with lines dt 2 lc rgb '#aa3333' "
	    "title 'mean'\n");
}

/* --- A-2 and the scaling part of A-4 ---------------------------------- */

static int
exp_scaling(void)
{
	FILE *fp = out_file("a2.csv"), *fp4 = out_file("a4_scaling.csv");
	double mean[NVARIANTS][7], sd[NVARIANTS][7], mom[NVARIANTS][7];
	struct load_result res;
	struct lb lb;
	size_t v;
	int n, i;

	if (fp == NULL || fp4 == NULL)
		return -1;
	for (v = 0; v < NVARIANTS; v++)
		for (n = 2; n <= 6; n++) {
			char tag[64];
			double s = 0, sq = 0;

			snprintf(tag, sizeof(tag), "a2-%s-%d", variants[v].name,
			    n);
			if (lb_start(&lb, n, &variants[v], tag) == -1 ||
			    run_load(&lb, &res, EXP_REQUESTS, EXP_CONCURRENCY,
			    NULL, NULL) == -1) {
				lb_stop(&lb);
				return -1;
			}
			lb_stop(&lb);
			for (i = 1; i <= n; i++) {
				char name[32];
				double c;

				snprintf(name, sizeof(name), "server-%d", i);
				c = (double)count_of(&res, name);
				s += c;
				sq += c * c;
			}
			mean[v][n] = s / n;
			sd[v][n] = sqrt(fmax(0, sq / n - mean[v][n] *
			    mean[v][n]));
			mom[v][n] = load_max_over_mean(&res);
			printf("  A-2 %-8s N=%d mean %.1f sd %.1f busiest/mean "
			    "%.3f\n", variants[v].name, n, mean[v][n], sd[v][n],
			    mom[v][n]);
			load_free(&res);
		}
	fprintf(fp, "n,mean,stddev,max_over_mean\n");
	fprintf(fp4, "n,classic_mean,classic_sd,classic_max_over_mean,"
	    "default_mean,default_sd,default_max_over_mean,bounded_mean,"
	    "bounded_sd,bounded_max_over_mean\n");
	for (n = 2; n <= 6; n++) {
		fprintf(fp, "%d,%.2f,%.2f,%.4f\n", n, mean[1][n], sd[1][n],
		    mom[1][n]);
		fprintf(fp4, "%d", n);
		for (v = 0; v < NVARIANTS; v++)
			fprintf(fp4, ",%.2f,%.2f,%.4f", mean[v][n], sd[v][n],
			    mom[v][n]);
		fprintf(fp4, "\n");
	}
	fclose(fp);
	fclose(fp4);
	if (gnuplot("a2.gp",
	    "set terminal pngcairo size 800,500 font 'DejaVu Sans,11'\n"
	    "set output 'a2.png'\n"
	    "set datafile separator ','\n"
	    "set title 'A-2: requests per replica for N = 2..6 "
	    "(10,000 requests each), default ring'\n"
	    "set xlabel 'replicas (N)'\nset ylabel 'requests per replica'\n"
	    "set xrange [1.5:6.5]\nset yrange [0:*]\nset grid\n"
	    "plot 'a2.csv' every ::1 using 1:2:3 with yerrorlines lw 2 pt 7 "
	    "lc rgb '#3b7dd8' title 'mean +- standard deviation', "
	    "10000/x with lines dt 2 lc rgb '#aa3333' title '10000/N'\n") ==
	    -1)
		return -1;
	return gnuplot("a4.gp",
	    "set terminal pngcairo size 1200,500 font 'DejaVu Sans,11'\n"
	    "set output 'a4.png'\n"
	    "set datafile separator ','\n"
	    "set multiplot layout 1,2 title 'A-4: classic ring, default "
	    "ring, bounded-load ring (--balance-factor 1.25)'\n"
	    "set title 'A-1: 10,000 requests over 3 replicas'\n"
	    "set style data histograms\nset style histogram clustered gap 1\n"
	    "set style fill solid 0.8 border -1\nset ylabel 'requests'\n"
	    "set yrange [0:*]\nset grid ytics\nset key top right\n"
	    "plot 'a4_distribution.csv' every ::1 using 2:xtic(1) title "
	    "'classic' lc rgb '#d8843b', '' every ::1 using 3 title 'default' "
	    "lc rgb '#3b7dd8', '' every ::1 using 4 title 'bounded' lc rgb "
	    "'#4aa564'\n"
	    "set title 'A-2: busiest replica over the mean, N = 2..6'\nset key top left\n"
	    "set style data linespoints\nset xlabel 'replicas (N)'\n"
	    "set ylabel 'busiest / mean'\nset yrange [0.9:*]\n"
	    "set xrange [1.5:6.5]\nset grid\n"
	    "plot 'a4_scaling.csv' every ::1 using 1:4 lw 2 pt 7 lc rgb "
	    "'#d8843b' title 'classic', '' every ::1 using 1:7 lw 2 pt 7 lc "
	    "rgb '#3b7dd8' title 'default', '' every ::1 using 1:10 lw 2 pt 7 "
	    "lc rgb '#4aa564' title 'bounded', 1 with lines dt 2 lc rgb "
	    "'#888888' title 'perfect'\n"
	    "unset multiplot\n");
}

/* --- a replica killed under load -------------------------------- */

struct a3_state {
	struct lb	*lb;
	pid_t		 victim;
	double		 kill_at;
	double		 killed, evicted, respawned, readmitted;
	double		 last_poll;
	int		 respawns0;
};

/* The pid of ringlb's child serving as replica name. */
static pid_t
child_pid(pid_t parent, const char *name)
{
	char path[128], buf[4096], cmd[4096];
	FILE *fp;
	ssize_t n;
	long pid;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children",
	    (long)parent, (long)parent);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fscanf(fp, "%ld", &pid) == 1) {
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		if ((fd = open(path, O_RDONLY)) == -1)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* argv is NUL-separated: look for "--id\0NAME\0" */
		snprintf(cmd, sizeof(cmd), "--id");
		for (ssize_t i = 0; i + 5 < n; i++)
			if (memcmp(buf + i, "--id", 5) == 0 &&
			    strcmp(buf + i + 5, name) == 0) {
				fclose(fp);
				return (pid_t)pid;
			}
	}
	fclose(fp);
	return -1;
}

/* Read server-2's state and respawn count from /metrics. */
static void
a3_poll(struct a3_state *st, double t)
{
	char url[128], *body, *p;
	int up = -1, respawns = -1;

	snprintf(url, sizeof(url), "%s/metrics", st->lb->base);
	if (http_get(url, &body) != 200 || body == NULL) {
		free(body);
		return;
	}
	if ((p = strstr(body, "ringlb_replica_up{replica=\"server-2\"} ")) !=
	    NULL)
		up = atoi(p + strlen("ringlb_replica_up{replica=\"server-2\"} "));
	if ((p = strstr(body, "ringlb_respawns_total{replica=\"server-2\"} "))
	    != NULL)
		respawns = atoi(p + strlen(
		    "ringlb_respawns_total{replica=\"server-2\"} "));
	free(body);
	if (st->killed > 0 && st->evicted == 0 && up == 0)
		st->evicted = t;
	if (st->killed > 0 && st->respawned == 0 && respawns >
	    st->respawns0)
		st->respawned = t;
	if (st->evicted > 0 && st->readmitted == 0 && up == 1)
		st->readmitted = t;
}

static void
a3_tick(double t, void *arg)
{
	struct a3_state *st = arg;

	if (st->killed == 0 && t >= st->kill_at) {
		kill(st->victim, SIGKILL);
		st->killed = t;
	}
	/* watch closely around the kill, then now and then */
	if (st->killed > 0 && (st->readmitted == 0 || t - st->last_poll >=
	    0.2)) {
		st->last_poll = t;
		a3_poll(st, t);
	}
}

static int
exp_kill(void)
{
	struct a3_state st;
	struct load_result res;
	struct lb lb;
	FILE *fp, *ev;
	double bin = 0.05, tmax;
	long nb, i, (*bins)[5];
	char script[4096];

	memset(&st, 0, sizeof(st));
	if (lb_start(&lb, 3, &variants[1], "a3") == -1)
		return -1;
	if ((st.victim = child_pid(lb.pid, "server-2")) == -1) {
		fprintf(stderr, "ringlb-analyze: cannot find server-2's "
		    "process\n");
		lb_stop(&lb);
		return -1;
	}
	st.lb = &lb;
	st.kill_at = 1.0;
	if (run_load(&lb, &res, 40000, 16, a3_tick, &st) == -1) {
		lb_stop(&lb);
		return -1;
	}
	a3_poll(&st, res.seconds);
	lb_stop(&lb);

	tmax = res.seconds;
	nb = (long)(tmax / bin) + 1;
	if ((bins = calloc(nb, sizeof(*bins))) == NULL)
		return -1;
	for (i = 0; i < res.done; i++) {
		struct load_record *r = &res.records[i];
		long b = (long)(r->t / bin);
		int s = -1;

		if (r->replica >= 0)
			sscanf(res.names[r->replica], "server-%d", &s);
		if (r->status < 200 || r->status >= 300)
			bins[b][4]++;
		else if (s >= 1 && s <= 3)
			bins[b][s]++;
	}
	if ((fp = out_file("a3.csv")) == NULL ||
	    (ev = out_file("a3_events.csv")) == NULL)
		return -1;
	fprintf(fp, "t,server-1,server-2,server-3,failed\n");
	for (i = 0; i < nb; i++)
		fprintf(fp, "%.3f,%ld,%ld,%ld,%ld\n", i * bin, bins[i][1],
		    bins[i][2], bins[i][3], bins[i][4]);
	fclose(fp);
	fprintf(ev, "event,t\nkilled,%.3f\nevicted,%.3f\nrespawned,%.3f\n"
	    "readmitted,%.3f\n", st.killed, st.evicted, st.respawned,
	    st.readmitted);
	fclose(ev);
	printf("  A-3 %ld requests in %.2f s, %ld failed; server-2 killed at "
	    "%.3f s, evicted %.3f, respawned %.3f, back on the ring %.3f "
	    "(healed in %.0f ms)\n", res.done, res.seconds, res.errors,
	    st.killed, st.evicted, st.respawned, st.readmitted,
	    (st.readmitted - st.killed) * 1e3);
	snprintf(script, sizeof(script),
	    "set terminal pngcairo size 1000,520 font 'DejaVu Sans,11'\n"
	    "set output 'a3.png'\n"
	    "set datafile separator ','\n"
	    "set title sprintf('A-3: server-2 killed (SIGKILL) under load - "
	    "%ld requests, %ld failed; healed in %.0f ms')\n"
	    "set xlabel 'seconds'\nset ylabel 'requests answered per %.0f ms'\n"
	    "set yrange [0:*]\nset grid\nset key outside right\n"
	    "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb "
	    "'#aa3333' lw 2\n"
	    "set label 'killed' at %.3f, graph 0.97 right offset -0.5,0 "
	    "tc rgb '#aa3333'\n"
	    "set arrow from %.3f, graph 0 to %.3f, graph 0.9 nohead lc rgb "
	    "'#888888' dt 2\n"
	    "set label 'evicted, respawned' at %.3f, graph 0.92 left "
	    "offset 0.5,0\n"
	    "set arrow from %.3f, graph 0 to %.3f, graph 0.8 nohead lc rgb "
	    "'#4aa564' lw 2\n"
	    "set label 're-admitted' at %.3f, graph 0.82 left offset 0.5,0 "
	    "tc rgb '#4aa564'\n"
	    "plot 'a3.csv' every ::1 using 1:2 with steps lw 2 lc rgb "
	    "'#d8843b' title 'server-1', '' every ::1 using 1:3 with steps "
	    "lw 2 lc rgb '#3b7dd8' title 'server-2', '' every ::1 using 1:4 "
	    "with steps lw 2 lc rgb '#9b59b6' title 'server-3', '' every ::1 "
	    "using 1:5 with impulses lw 3 lc rgb '#aa3333' title 'failed'\n",
	    res.done, res.errors, (st.readmitted - st.killed) * 1e3,
	    bin * 1e3, st.killed, st.killed, st.killed, st.evicted,
	    st.evicted, st.evicted, st.readmitted, st.readmitted,
	    st.readmitted);
	free(bins);
	load_free(&res);
	return gnuplot("a3.gp", script);
}

static void
exp_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ringlb-analyze experiments --out DIR [--ringlb PATH]\n"
	    "\n"
	    "Runs the classic assignment's analysis against real ringlb "
	    "instances on\nloopback (the ringlb beside this program unless "
	    "--ringlb is given) and writes\nCSV data and PNG charts (with "
	    "gnuplot) to DIR: a1 (10,000 requests over 3\nreplicas), a2 (N = "
	    "2..6), a3 (a replica killed under load), a4 (classic,\ndefault "
	    "and bounded-load rings side by side).  Logs go to DIR/logs.\n");
}

int
analyze_experiments(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "ringlb", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char self[PATH_MAX - 16], logs[PATH_MAX + 8], *slash;
	ssize_t n;
	int ch, rc = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			snprintf(outdir, sizeof(outdir), "%s", optarg);
			break;
		case 'r':
			snprintf(ringlb_bin, sizeof(ringlb_bin), "%s", optarg);
			break;
		case 'h':
			exp_usage(stdout);
			return 0;
		default:
			exp_usage(stderr);
			return 2;
		}
	}
	if (outdir[0] == '\0') {
		fprintf(stderr, "ringlb-analyze: give --out DIR for the data "
		    "and charts\n");
		return 2;
	}
	if (ringlb_bin[0] == '\0') {
		if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) ==
		    -1)
			return 1;
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL)
			slash[1] = '\0';
		snprintf(ringlb_bin, sizeof(ringlb_bin), "%sringlb", self);
	}
	if (access(ringlb_bin, X_OK) == -1) {
		fprintf(stderr, "ringlb-analyze: cannot run %s; build it with "
		    "make or give --ringlb PATH\n", ringlb_bin);
		return 1;
	}
	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		fprintf(stderr, "ringlb-analyze: gnuplot is needed for the "
		    "charts: apt-get install gnuplot-nox\n");
		return 1;
	}
	snprintf(logs, sizeof(logs), "%s/logs", outdir);
	/* like mkdir -p */
	for (slash = logs + 1; *slash != '\0'; slash++)
		if (*slash == '/') {
			*slash = '\0';
			mkdir(logs, 0755);
			*slash = '/';
		}
	if (mkdir(logs, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "ringlb-analyze: cannot create %s: %s\n", logs,
		    strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	printf("experiments against %s, output in %s\n", ringlb_bin, outdir);
	if (exp_distribution() == -1 || exp_scaling() == -1 ||
	    exp_kill() == -1)
		rc = 1;
	curl_global_cleanup();
	if (rc == 0)
		printf("wrote %s/a1.png a2.png a3.png a4.png and their CSV "
		    "data\n", outdir);
	return rc;
}
