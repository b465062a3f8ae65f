"""Medians of the bench rounds, as a Markdown table (see bench.sh)."""
import re
import statistics
import sys

work, rounds, idle_rss, busy_rss, conns, duration = sys.argv[1:7]
rounds = int(rounds)


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
    return rps, p50, p99, bad, errs


rows = {}
for lb in ("ringlb", "nginx", "haproxy"):
    runs = [parse("%s/%s-%d.txt" % (work, lb, r)) for r in range(1, rounds + 1)]
    rows[lb] = [statistics.median(x[i] for x in runs) for i in range(3)] + \
        [sum(x[3] for x in runs), sum(x[4] for x in runs)]

ng = rows["nginx"]
print("wrk -t1 -c%s -d%ss, random request_id, %d interleaved rounds, medians"
      % (conns, duration, rounds))
print()
print("| balancer | requests/s | p50 ms | p99 ms | non-2xx | socket errors | req/s vs nginx | p99 vs nginx |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for lb, name in (("ringlb", "ringlb"), ("nginx", "nginx 1.22 (1 worker)"),
                 ("haproxy", "HAProxy 2.6 (1 thread)")):
    rps, p50, p99, bad, errs = rows[lb]
    print("| %s | %.0f | %.2f | %.2f | %d | %d | %.2f | %.2f |"
          % (name, rps, p50, p99, bad, errs, rps / ng[0], p99 / ng[2]))
print()
if busy_rss:
    print("ringlb RSS: %s KiB idle (3 replicas), %s KiB under 1,000 client "
          "connections" % (idle_rss, busy_rss))
else:
    print("ringlb RSS: %s KiB idle (3 replicas)" % idle_rss)
