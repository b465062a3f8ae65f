"""Instructions per proxied request from callgrind files (see cost.sh).

usage: cost_report.py REQUESTS CALLGRIND_FILE...

Each file is one run; the figure of each is printed, and how far apart
they are.  The breakdown (by library, malloc calls, ringlb's functions
with what they call) is that of the first file.
"""
import os
import re
import subprocess
import sys
from collections import defaultdict

MALLOC_FNS = {
    "malloc", "free", "calloc", "realloc", "cfree", "_int_malloc",
    "_int_free", "_int_realloc", "malloc_consolidate", "unlink_chunk",
    "sysmalloc", "systrim", "_int_memalign", "_mid_memalign",
    "tcache_init", "__libc_malloc", "__libc_free", "__libc_calloc",
    "__libc_realloc", "malloc_trim", "mtrim", "__malloc_trim",
    "_int_free_merge_chunk", "_int_free_create_chunk",
    "_int_free_maybe_consolidate", "tcache_get", "tcache_put",
}
ALLOC_CALLS = {"malloc", "calloc", "realloc"}
PRINTF_RE = re.compile(r"printf|scanf|_IO_|_itoa|__printf|outstring|"
                       r"parse_one_spec|find_spec|read_int|strto[ud]?l|"
                       r"____strto|__strto|group_number|_i18n_number")

# a name may be given once with its (id) and later by the id alone
NAME_RE = re.compile(r"^\((\d+)\)(?: (.*))?$")


def parse(path):
    """Self cost by (object, function), calls into malloc & co., total."""
    names = {k: {} for k in ("ob", "fl", "fn")}
    self_cost = defaultdict(int)
    calls = defaultdict(int)
    ob = fn = ""
    cfn = None
    after_calls = False
    total = None

    def name(kind, text):
        m = NAME_RE.match(text)
        if not m:
            return text
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), "?")

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if after_calls:
                    after_calls = False	# inclusive cost of a call
                    continue
                parts = line.split()
                if len(parts) > 1:
                    self_cost[(ob, fn)] += int(parts[1])
                continue
            key, _, val = line.partition("=")
            if key == "ob":
                ob = name("ob", val)
            elif key == "fn":
                fn = name("fn", val)
            elif key in ("fl", "fi", "fe"):
                name("fl", val)
            elif key in ("cfi", "cfl"):
                name("fl", val)
            elif key == "cob":
                name("ob", val)
            elif key == "cfn":
                cfn = name("fn", val)
            elif key == "calls":
                calls[cfn] += int(val.split()[0])
                after_calls = True
            elif line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    if total is None:
        total = sum(self_cost.values())
    return self_cost, calls, total


def part_of(ob, fn):
    base = os.path.basename(ob)
    if base.startswith("libcurl"):
        return "libcurl"
    if base.startswith("libevent"):
        return "libevent"
    if base.startswith("libc.so") or base.startswith("libc-"):
        if fn in MALLOC_FNS:
            return "libc: malloc/free"
        if PRINTF_RE.search(fn):
            return "libc: printf/scanf/strto*"
        return "libc: the rest (memcpy, strings, ...)"
    if base == "ringlb":
        return "ringlb"
    if base.startswith("libjansson"):
        return "jansson"
    if base.startswith("ld-linux") or base.startswith("ld-"):
        return "ld.so"
    return "other libraries (%s)" % base if base else "other"


def main():
    requests = int(sys.argv[1])
    files = sys.argv[2:]
    figures = []
    parsed = []
    for path in files:
        p = parse(path)
        parsed.append(p)
        figures.append(p[2] / requests)

    for i, f in enumerate(figures):
        print("run %d: %s instructions per proxied request" %
              (i + 1, format(round(f), ",")))
    if len(figures) > 1:
        spread = (max(figures) - min(figures)) / min(figures) * 100
        print("runs differ by %.2f%% (%s)" %
              (spread, "within 2%" if spread <= 2 else "MORE THAN 2%"))
    print()

    self_cost, calls, total = parsed[0]
    parts = defaultdict(int)
    for (ob, fn), v in self_cost.items():
        parts[part_of(ob, fn)] += v
    print("%-42s %14s %7s" % ("by library (self cost)", "instr/request",
                              "share"))
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print("%-42s %14s %6.1f%%" % (k, format(round(v / requests), ","),
                                      100.0 * v / total))
    print()
    allocs = sum(calls[f] for f in ALLOC_CALLS)
    print("allocations per request: %.1f (malloc %.1f, calloc %.1f, "
          "realloc %.1f), free %.1f" % (
              allocs / requests, calls["malloc"] / requests,
              calls["calloc"] / requests, calls["realloc"] / requests,
              calls["free"] / requests))
    print()

    print("top functions by self cost, instructions per request:")
    top = sorted(self_cost.items(), key=lambda kv: -kv[1])[:25]
    for (ob, fn), v in top:
        print("  %9s  %-44s %s" % (format(round(v / requests), ","), fn[:44],
                                   os.path.basename(ob)))
    print()

    # ringlb's own functions with all they call, from callgrind_annotate
    try:
        out = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=99.9",
             files[0]], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print("callgrind_annotate failed: %s" % e)
        return
    print("ringlb's functions, inclusive (with what they call), "
          "instructions per request:")
    n = 0
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S+):(\S+)\s*"
                     r"(?:\[(.*)\])?", line)
        if not m or not m.group(2).startswith("src/"):
            continue
        v = int(m.group(1).replace(",", ""))
        print("  %9s  %s:%s" % (format(round(v / requests), ","),
                                m.group(2), m.group(3)))
        n += 1
        if n == 25:
            break


if __name__ == "__main__":
    main()
