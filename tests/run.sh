#!/bin/sh
# Run the unit tests and the end-to-end suite; list what was skipped and
# why, then print one closing line "total: N passed, N failed, N skipped"
# and exit non-zero on any failure.
#   usage: tests/run.sh BUILD_DIR PYTHON
build=${1:-build}
python=${2:-python3}
passed=0
failed=0
skipped=0
status=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for t in "$build"/test_*; do
	[ -x "$t" ] || continue
	"$t" > "$out" 2>&1 || status=1
	cat "$out"
	line=$(tail -n 1 "$out")
	p=$(echo "$line" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p')
	f=$(echo "$line" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p')
	[ -n "$p" ] || { echo "$t: no summary line"; status=1; p=0; f=1; }
	passed=$((passed + p))
	failed=$((failed + f))
done

junit="$build/e2e-junit.xml"
# tests/docker: the Docker backend against a fake engine on every machine,
# and against the real engine (make build, docker-compose) where one
# answers; without one, that part is skipped with a message.
RINGLB_BUILD="$(cd "$build" && pwd)" "$python" -m pytest -q -p no:cacheprovider \
	-rs --timeout=120 --junitxml="$junit" tests/e2e tests/docker || status=1
if [ -f "$junit" ]; then
	# the skipped tests, one line each, then "PASSED FAILED SKIPPED"
	counts=$("$python" - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
for case in root.iter("testcase"):
    for sk in case.findall("skipped"):
        where = case.get("classname", "").replace(".", "/") + ".py::" + \
            case.get("name", "")
        why = (sk.get("message") or "").replace("\n", " ")
        print("skipped: %s: %s" % (where, why))
print(t - bad - skip, bad, skip)
PY
)
	echo "$counts" | sed '$d'
	counts=$(echo "$counts" | tail -n 1)
	set -- $counts
	passed=$((passed + $1))
	failed=$((failed + $2))
	skipped=$((skipped + $3))
else
	echo "end-to-end suite did not run"
	failed=$((failed + 1))
fi

echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
