"""The README's and docs' examples are what the current code answers.

Every ```console block of README.md and docs/*.md made only of `curl`
commands against localhost:5000 is replayed, in order, against a fresh
ringlb started as `make run` starts it (the process backend, 3 replicas),
and each answer must be the one printed: the body byte for byte and, for
`curl -i`, the status line and every header but Date.
"""
import glob
import http.client
import os
import re
import shlex

import pytest

from conftest import ROOT, request

README = os.path.join(ROOT, "README.md")
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def console_blocks(path=README):
    text = open(path).read()
    return re.findall(r"```console\n(.*?)```", text, re.S)


def curl_blocks(path=README):
    """[(commands, expected lines)] of the blocks of PATH that are all curl."""
    out = []
    for block in console_blocks(path):
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
    replay(procs, README)


@pytest.mark.parametrize("path", DOCS, ids=os.path.basename)
def test_docs_curl_examples_are_real(procs, path):
    replay(procs, path)


def replay(procs, path):
    name = os.path.relpath(path, ROOT)
    for steps in curl_blocks(path):
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
            assert got == want, "%s: $ %s" % (name, cmd)


def test_readme_is_short_and_opens_with_the_classroom_path():
    text = open(README).read()
    assert len(text.splitlines()) < 350, "README.md: move details to docs/"
    start = text.index("## Start here")
    first = text[start:text.index("\n## ", start + 1)]
    for want in ("make run", "make up", "docker-compose up",
                 '"hostnames": ["Server 4"]', '"hostnames": ["Server 1"]'):
        assert want in first, want


def test_links_between_readme_and_docs_lead_somewhere():
    for path in [README] + DOCS:
        base = os.path.dirname(path)
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)",
                                 open(path).read()):
            if "://" in target:
                continue
            assert os.path.exists(os.path.join(base, target)), \
                "%s links to %s" % (os.path.relpath(path, ROOT), target)
