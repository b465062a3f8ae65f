"""Medians of the bench rounds, as Markdown tables (see bench.sh).

usage: summarize.py DIR ROUNDS CONNS DURATION "WORKERS" [WRK_THREADS]

DIR holds, for each worker count N in WORKERS and round R, wrk's report
LB-N-R.txt and the CPU seconds wrk used, LB-N-R.txt.cpu (LB: ringlb,
nginx, haproxy); ringlb's RSS in KiB idle in rss-idle-N and, when
measured, under 1,000 client connections in rss-busy-N.  WRK_THREADS,
when given, is wrk's thread count at every N; otherwise it ran N threads.
"""
import re
import statistics
import sys

work, rounds, conns, duration, workers = sys.argv[1:6]
wrk_threads = sys.argv[6] if len(sys.argv) > 6 else ""
rounds = int(rounds)
workers = [int(n) for n in workers.split()]
BALANCERS = ("ringlb", "nginx", "haproxy")


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def parse(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    # the percentile lines, not a "75.99%" in the thread stats above them
    p50 = ms(re.search(r"^\s*50%\s+(\S+)", t, re.M).group(1))
    p99 = ms(re.search(r"^\s*99%\s+(\S+)", t, re.M).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    bad = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    errs = sum(int(x) for x in m.groups()) if m else 0
    try:
        cpu = float(open(path + ".cpu").read())
    except (OSError, ValueError):
        cpu = float("nan")
    return rps, p50, p99, bad, errs, cpu


def read(path):
    try:
        return open(path).read().strip()
    except OSError:
        return ""


def name(lb, n):
    if lb == "ringlb":
        return "ringlb (RINGLB_WORKERS=%d)" % n
    if lb == "nginx":
        return "nginx 1.22 (%d worker%s)" % (n, "" if n == 1 else "s")
    return "HAProxy 2.6 (%d thread%s)" % (n, "" if n == 1 else "s")


# rows[n][lb]: median requests/s, p50, p99; non-2xx and socket errors
# summed over the rounds, each round's non-2xx, the most CPU wrk used
rows = {}
for n in workers:
    rows[n] = {}
    for lb in BALANCERS:
        runs = [parse("%s/%s-%d-%d.txt" % (work, lb, n, r))
                for r in range(1, rounds + 1)]
        rows[n][lb] = [statistics.median(x[i] for x in runs) for i in range(3)] + \
            [sum(x[3] for x in runs), sum(x[4] for x in runs),
             [x[3] for x in runs], max(x[5] for x in runs)]

for n in workers:
    threads = int(wrk_threads) if wrk_threads else n
    ng = rows[n]["nginx"]
    print("#### %d worker%s" % (n, "" if n == 1 else "s"))
    print()
    print("wrk -t%d -c%s -d%ss, random request_id, %d interleaved rounds, medians"
          % (threads, conns, duration, rounds))
    print()
    print("| balancer | requests/s | p50 ms | p99 ms | non-2xx | socket errors | req/s vs nginx | p99 vs nginx |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for lb in BALANCERS:
        rps, p50, p99, bad, errs, _, _ = rows[n][lb]
        print("| %s | %.0f | %.2f | %.2f | %d | %d | %.2f | %.2f |"
              % (name(lb, n), rps, p50, p99, bad, errs, rps / ng[0], p99 / ng[2]))
    print()
    print("non-2xx per round: " + "; ".join(
        "%s %s" % (lb, " ".join(str(b) for b in rows[n][lb][5]))
        for lb in BALANCERS))
    cpu = max(rows[n][lb][6] for lb in BALANCERS)
    print("wrk's CPU: at most %.0f%% of one core in a run, with %d thread%s"
          % (100 * cpu / float(duration), threads, "" if threads == 1 else "s"))
    idle, busy = read("%s/rss-idle-%d" % (work, n)), read("%s/rss-busy-%d" % (work, n))
    if busy:
        print("ringlb RSS: %s KiB idle (3 replicas), %s KiB under 1,000 client "
              "connections" % (idle, busy))
    elif idle:
        print("ringlb RSS: %s KiB idle (3 replicas)" % idle)
    print()

if len(workers) > 1:
    if 1 in workers:
        print("#### Scaling: requests/s at N workers over at 1")
        print()
        print("| balancer | " + " | ".join("N=%d" % n for n in workers) + " |")
        print("|---|" + "---:|" * len(workers))
        for lb, label in zip(BALANCERS, ("ringlb", "nginx 1.22", "HAProxy 2.6")):
            base = rows[1][lb][0]
            print("| %s | " % label + " | ".join(
                "%.2f" % (rows[n][lb][0] / base) for n in workers) + " |")
        print()
    print("#### ringlb over nginx at each N")
    print()
    print("| workers | req/s vs nginx | p99 vs nginx |")
    print("|---:|---:|---:|")
    for n in workers:
        rl, ng = rows[n]["ringlb"], rows[n]["nginx"]
        print("| %d | %.2f | %.2f |" % (n, rl[0] / ng[0], rl[2] / ng[2]))
    print()
