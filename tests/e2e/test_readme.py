"""The README's examples are what the current code answers.

Every ```console block of README.md made only of `curl` commands against
localhost:5000 is replayed, in order, against a fresh ringlb started as
`make run` starts it (the process backend, 3 replicas), and each answer
must be the one printed: the body byte for byte and, for `curl -i`, the
status line and every header but Date.
"""
import http.client
import os
import re
import shlex

from conftest import ROOT, request

README = os.path.join(ROOT, "README.md")


def console_blocks():
    text = open(README).read()
    return re.findall(r"```console\n(.*?)```", text, re.S)


def curl_blocks():
    """[(commands, expected lines)] of the blocks that are all curl."""
    out = []
    for block in console_blocks():
        steps = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append([line[2:], []])
            elif steps:
                steps[-1][1].append(line)
        if steps and all(s[0].startswith("curl ") and "localhost:5000" in s[0]
                         for s in steps):
            out.append(steps)
    return out


def parse_curl(cmd):
    """curl [-i] [-s] [-X METHOD] [-d BODY] URL -> (method, path, body, -i)."""
    args = shlex.split(cmd)[1:]
    method, body, head, url = None, None, False, None
    while args:
        a = args.pop(0)
        if a == "-i":
            head = True
        elif a == "-s":
            pass
        elif a == "-X":
            method = args.pop(0)
        elif a == "-d":
            body = args.pop(0)
        else:
            url = a
    path = url.split("localhost:5000", 1)[1] or "/"
    if method is None:
        method = "POST" if body is not None else "GET"
    return method, path, body, head


def answer_lines(r, head):
    lines = []
    if head:
        lines.append("HTTP/1.1 %d %s" % (r.status, http.client.responses[r.status]))
        lines += ["%s: %s" % (k, v) for k, v in r.headers]
        lines.append("")
    lines += r.body.decode().splitlines()
    return lines


def test_readme_has_curl_examples():
    blocks = curl_blocks()
    assert blocks, "no curl example found in README.md"
    assert any("request_id=42" in s[0] for b in blocks for s in b)


def test_readme_curl_examples_are_real(procs):
    for steps in curl_blocks():
        lb = procs.ringlb((), "--replicas", "3", healthy=3, port=None)
        for cmd, expected in steps:
            method, path, body, head = parse_curl(cmd)
            headers = {"Content-Type": "application/x-www-form-urlencoded"} \
                if body is not None else {}
            r = request(lb.port, method, path,
                        body=body.encode() if body is not None else None,
                        headers=headers)
            got = answer_lines(r, head)
            want = [l for l in expected if not l.startswith("Date: ")]
            got = [l for l in got if not l.startswith("Date: ")]
            assert got == want, "README: $ %s" % cmd
