#!/usr/bin/python3
"""The daemon's command line against the real netcore binary.

netcore --help is generated from config.c's option table: this checks that it
lists exactly the options of README.md's option table with the same numeric
defaults, that --help and --version exit 0, and that every kind of bad value
exits 2 with a message naming the option (before any socket is opened).

Usage: cli_options.py NETCORE README.md
"""
import re
import subprocess
import sys

NETCORE, README = sys.argv[1], sys.argv[2]
failures = []


def run(*args):
    p = subprocess.run([NETCORE, *args], capture_output=True, text=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin"})
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        failures.append(what)


def help_options(text):
    """{option: default or None} of the option lines of --help."""
    texts, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^  (--[a-z0-9-]+)", line)
        if m:
            current = m.group(1)
            texts[current] = line
        elif current and line.startswith("   "):
            texts[current] += " " + line.strip()
        else:
            current = None
    opts = {}
    for opt, t in texts.items():
        d = re.search(r"\(default (\d+)\)", t)
        opts[opt] = d.group(1) if d else None
    return opts


def readme_options(text):
    """{option: default or None} of README's daemon option table."""
    opts = {}
    for line in text.splitlines():
        m = re.match(r"^\| `(--[a-z0-9-]+)[^`]*`(?:, `(--[a-z0-9-]+)`)? \|([^|]*)\|", line)
        if not m:
            continue
        default = m.group(3).strip()
        opts[m.group(1)] = default if re.fullmatch(r"\d+", default) else None
        if m.group(2):
            opts[m.group(2)] = None
    return opts


rc, out, err = run("--help")
check(rc == 0, f"--help exited {rc}")
check(out.startswith("Usage: netcore"), "--help does not start with Usage")
helped = help_options(out)
with open(README, encoding="utf-8") as f:
    documented = readme_options(f.read())
check(len(documented) > 20, f"README option table not found ({len(documented)} rows)")
for opt in sorted(set(helped) | set(documented)):
    if opt in ("--ping",):  # a mode of its own, documented in the subcommand rows
        continue
    if opt not in helped:
        failures.append(f"README documents {opt}, netcore --help does not list it")
    elif opt not in documented:
        failures.append(f"netcore --help lists {opt}, README's option table does not")
    elif documented[opt] is not None and helped[opt] != documented[opt]:
        failures.append(f"{opt}: README says default {documented[opt]}, --help says {helped[opt]}")

rc, out, _ = run("--version")
check(rc == 0 and out.startswith("netcore "), f"--version: exit {rc}, '{out.strip()}'")

# Each bad command line: exit 2, and stderr says what is wrong.
bad = [
    (["--lease-ms", "abc"], "--lease-ms needs a number from 0 to 4294967295, not 'abc'"),
    (["--hwm", "-1"], "--hwm needs a number from 0 to 4294967295, not '-1'"),
    (["--max-frame", "4294967296"], "--max-frame needs a number from 0 to 4294967295"),
    (["--handler-budget", "lots"], "--handler-budget needs a number of bytes, not 'lots'"),
    (["--max-memory", ""], "--max-memory needs a number of bytes, not ''"),
    (["--credit-window", "0"], "--credit-window must be at least 1"),
    (["--fd-reserve", "15"], "--fd-reserve must be at least 16 (ZeroMQ and netcore need them)"),
    (["--max-batch", "255"], "--max-batch must be at least 256 (client libraries send up to 256)"),
    (["--log-level", "loud"], "--log-level is error, warn, info or debug, not 'loud'"),
    (["--log-format", "xml"], "--log-format is text or json, not 'xml'"),
    (["--listen-fd", "x"], "--listen-fd needs a number"),
    (["--allow-uid", "root"], "--allow-uid needs a number"),
    (["--curve-allow", "/nonexistent"], "CURVE needs both --curve-secret-file"),
    (["--no-such-option"], "Usage: netcore"),
    (["stray"], "unexpected argument 'stray'"),
    ([a for i in range(17) for a in ("--bind", f"ipc:///tmp/x{i}")], "at most 16 --bind endpoints"),
    ([a for i in range(65) for a in ("--allow-uid", str(i))], "at most 64 --allow-uid"),
    ([a for i in range(65) for a in ("--listen-fd", str(100 + i))], "at most 64 listening fds"),
]
for args, says in bad:
    rc, out, err = run(*args)
    shown = " ".join(args)[:60]
    check(rc == 2, f"netcore {shown}: exit {rc}, not 2")
    check(says in err, f"netcore {shown}: stderr does not say \"{says}\": {err[:300]!r}")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"cli_options: {len(helped)} options agree with README; {len(bad)} bad command lines refused")
