#!/usr/bin/python3
"""Every document reference in the repository resolves.

Checked in every tracked file (git ls-files) that is documentation or source
(scripts, .sh and .py, only for their section references):
  - a Markdown link [text](path) to no file or directory of the repository;
  - a name of a Markdown document (DESIGN.md, docs/POLICY.md, ...) that no
    tracked file has, by path or by name;
  - a name of a C header (batch.h, ...) outside `#include <...>` that is neither
    tracked, nor made by the build (from a .h.in, or protobuf-c's netcore.pb-c.h),
    nor a system header;
  - "PROTOCOL.md <n>" or "PROTOCOL §<n>" naming a section proto/PROTOCOL.md
    does not have, and "ARCHITECTURE.md rule <n>" / "section <n>" naming a
    rule or section docs/ARCHITECTURE.md does not have.

Usage: check_refs.py REPO_ROOT
"""
import os
import re
import subprocess
import sys

ROOT = sys.argv[1]
files = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True,
                       check=True).stdout.split()
tracked = set(files)
names = {os.path.basename(f) for f in files}
built = {os.path.basename(f)[:-3] for f in files if f.endswith(".h.in")} | {"netcore.pb-c.h"}
dirs = {os.path.dirname(f) for f in files}
for d in list(dirs):
    while d:
        dirs.add(d)
        d = os.path.dirname(d)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def headings(path, pattern):
    return {m.group(1) for m in re.finditer(pattern, read(path), re.M)}


protocol_sections = headings("proto/PROTOCOL.md", r"^#+ (\d+(?:\.\d+)*)\.? ")
arch_sections = headings("docs/ARCHITECTURE.md", r"^## (\d+)\. ")
arch_rules = {m.group(1) for m in re.finditer(
    r"^(\d+)\. \*\*", read("docs/ARCHITECTURE.md").split("## 5. ", 1)[1].split("\n## ", 1)[0],
    re.M)}

LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
MD = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[A-Za-z][\w-]*\.md)\b")
HEADER = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[A-Za-z][\w-]*\.h)\b(?!\.in)")
PROTO_REF = re.compile(r"PROTOCOL(?:\.md)?,? (?:§|section )?(\d+(?:\.\d+)?)\b")
ARCH_REF = re.compile(r"ARCHITECTURE\.md`?,? (rules?|section) (\d+)(?: and (\d+))?")
TEXT = re.compile(r"\.(md|c|h|py|js|sh|txt|cmake|proto|yml|yaml|in)$|CMakeLists|Dockerfile")

problems = []
for f in files:
    if not TEXT.search(f) or "node_modules" in f or f.startswith("tests/docs/"):
        continue
    try:
        text = read(f)
    except (UnicodeDecodeError, FileNotFoundError):
        continue
    for n, line in enumerate(text.splitlines(), 1):
        where = f"{f}:{n}"
        if f.endswith(".md"):
            for m in LINK.finditer(line):
                t = m.group(1)
                if re.match(r"[a-z]+:", t):
                    continue
                p = os.path.normpath(os.path.join(os.path.dirname(f), t))
                if p not in tracked and p not in dirs:
                    problems.append(f"{where}: link to {t}, which does not exist")
        if f.endswith((".sh", ".py")):
            continue  # scripts name the files they write; the compiler checks #include <...>
        for m in MD.finditer(line):
            t = m.group(1)
            if "://" in line[max(0, m.start() - 60):m.start()]:
                continue
            if t in tracked or os.path.basename(t) in names or \
               os.path.normpath(os.path.join(os.path.dirname(f), t)) in tracked:
                continue
            problems.append(f"{where}: {t} is no document of the repository")
        if not line.lstrip().startswith("#include <"):
            for m in HEADER.finditer(line):
                t = m.group(1)
                b = os.path.basename(t)
                if b in names or b in built or os.path.exists("/usr/include/" + t) or \
                   os.path.exists("/usr/include/x86_64-linux-gnu/" + t):
                    continue
                problems.append(f"{where}: header {t} does not exist")
        for m in PROTO_REF.finditer(line):
            if m.group(1) not in protocol_sections and m.group(1).split(".")[0] != "0":
                problems.append(f"{where}: PROTOCOL.md has no section {m.group(1)}")
        for m in ARCH_REF.finditer(line):
            known = arch_sections if m.group(1) == "section" else arch_rules
            for num in filter(None, (m.group(2), m.group(3))):
                if num not in known:
                    problems.append(f"{where}: ARCHITECTURE.md has no {m.group(1)} {num}")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"check_refs: {len(files)} files, every document reference resolves")
