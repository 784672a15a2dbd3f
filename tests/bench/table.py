#!/usr/bin/python3
"""Turns run.sh's results.jsonl into the Markdown of the benchmark: one table (medians over
the runs, every run's value, ratio vs Node) and the issue's targets, met or missed by how
much. Usage: table.py results.jsonl [machine.txt]"""
import json
import statistics
import sys

SERVERS = [
    ("netcore-c", "netcore + C echo"),
    ("node", "Node.js net (seed echo)"),
    ("libuv", "libuv echo, 1 process"),
    ("netcore-python", "netcore + Python echo"),
    ("netcore-node", "netcore + Node.js echo"),
    ("netcore-c-via", "netcore + C echo --via-handler"),
    ("netcore-python-via", "netcore + Python echo --via-handler"),
    ("netcore-node-via", "netcore + Node.js echo --via-handler"),
    ("netcore-proxy", "netcore + C proxy -> uv_echo"),
    ("node-proxy", "Node.js net proxy (pipe) -> uv_echo"),
]
# What "vs" divides by: Node's echo, except for the proxy (Node's proxy).
BASELINE = {"netcore-proxy": "node-proxy", "node-proxy": "node-proxy"}

# The redis loads: (server, description, the Node `net` / asyncio version it is compared with).
REDIS_SERVERS = [
    ("redis-c", "C actor (libnc) through netcore", "redis-node-net"),
    ("redis-node", "JS actor (our Node.js library) through netcore", "redis-node-net"),
    ("redis-python", "Python actor (our library) through netcore", "redis-asyncio"),
    ("redis-node-net", "the same JS on Node's net", "redis-node-net"),
    ("redis-asyncio", "the same Python on asyncio streams", "redis-asyncio"),
    ("redis-server", "redis-server (reference)", "redis-node-net"),
]
REDIS_TESTS = [("ping_mbulk", "PING_MBULK"), ("set", "SET"), ("get", "GET")]
LOADS = [
    ("pingpong", "ping-pong 100 conns, 64 B, depth 1", "req/s"),
    ("pipelined", "pipelined 100 conns, 64 B, depth 16", "req/s"),
    ("bulk", "bulk 10 conns, 64 KiB, depth 4", "req/s"),
    ("churn", "churn, 32 parallel connectors", "conn/s"),
    ("churn8", "churn, 8 parallel connectors (latency-bound)", "conn/s"),
    ("idle", "idle connections", "KiB RSS/conn"),
]


def num(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def pct(v):
    return "-" if v is None else f"{v:.0f} %"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def per_conn_kib(r, i):
    rss = r.get("rss") or []
    n = r.get("idle_conns") or 0
    if len(rss) <= i or n <= 0 or rss[i]["before_kb"] < 0:
        return None
    return (rss[i]["after_kb"] - rss[i]["before_kb"]) / n


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    machine = open(sys.argv[2]).read().strip() if len(sys.argv) > 2 else ""
    na = {}
    res = {}
    deaths = {}
    wrong = {}
    for r in rows:
        if r.get("load") == "redis-verify":
            if r.get("wrong"):
                wrong.setdefault(r["server"], []).append(f"run {r['run']}: {r['wrong']}")
        elif "died" in r:
            deaths.setdefault((r["load"], r["server"]), []).append(f"run {r['run']}: {r['died']}")
        elif "na" in r:
            na.setdefault(r["server"], r["na"])
        elif "load" in r:
            res.setdefault((r["load"], r["server"]), []).append(r)

    def value(load, r):
        if load == "idle":
            return per_conn_kib(r, 0)
        return r.get("rate")

    summary = {}
    out = []
    if machine:
        out.append("```\n" + machine + "\n```\n")
    out.append("| load | server | median | unit | vs Node | every run | MB/s | p50 µs | p99 µs "
               "| max µs | server CPU | server µs/op | loadgen CPU | softirq | other CPU | corrupt B | failed conns | notes |")
    out.append("|---|---|--:|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for load, ldesc, unit in LOADS:
        if not any(k[0] == load for k in res):
            continue
        for server, sdesc in SERVERS:
            rs = res.get((load, server))
            if not rs:
                if server in na or any(k[1] == server for k in res):
                    why = na.get(server, "no result")
                    out.append(f"| {ldesc} | {sdesc} | n/a ({why}) |" + " |" * 15)
                continue
            vals = [value(load, r) for r in rs]
            m = med(vals)
            p50 = med([r.get("p50_us") for r in rs])
            p99 = med([r.get("p99_us") for r in rs])
            mx = max([r.get("max_us") or 0 for r in rs])
            mbps = med([r.get("mbps") for r in rs])
            cpu = med([100 * r["cpu_s"] / r["wall_s"] for r in rs if r.get("wall_s")])
            per_op = med([1e6 * r["cpu_s"] / r["count"] for r in rs
                          if r.get("count") and load != "idle" and "cpu_s" in r])
            lg = med([100 * r["self_cpu_s"] / r["wall_s"] for r in rs
                      if r.get("wall_s") and "self_cpu_s" in r])
            sirq = med([100 * r["softirq_s"] / r["wall_s"] for r in rs
                        if r.get("wall_s") and "softirq_s" in r])
            other = med([100 * max(0.0, r["machine_cpu_s"] - r["softirq_s"] - r["cpu_s"]
                                   - r["self_cpu_s"]) / r["wall_s"] for r in rs
                         if r.get("wall_s") and "self_cpu_s" in r and "softirq_s" in r])
            corrupt = sum(r.get("corrupt_bytes", 0) for r in rs)
            failed = sum(r.get("failed_conns", 0) for r in rs)
            errors = [r["error"] for r in rs if "error" in r]
            errors += ["a server process died during or after this load, " + d for d in deaths.get((load, server), [])]
            summary[(load, server)] = dict(m=m, p99=p99, corrupt=corrupt, failed=failed,
                                           errors=errors, n=len(rs), per_op=per_op)
            notes = []
            if load == "idle":
                rss = [r["rss"][0] for r in rs if r.get("rss")]
                if rss:
                    b = med([x["before_kb"] for x in rss]) / 1024
                    a = med([x["after_kb"] for x in rss]) / 1024
                    who = "daemon alone" if server.startswith("netcore") else "process"
                    notes.append(f"{who}: RSS {b:.1f} → {a:.1f} MiB at {rs[0].get('idle_conns')}"
                                 f" conns")
                aux = med([per_conn_kib(r, 1) for r in rs])
                if aux is not None:
                    notes.append(f"actor +{aux:.2f} KiB/conn")
            up = med([1e6 * r["upstream_cpu_s"] / r["count"] for r in rs
                      if r.get("count") and "upstream_cpu_s" in r and load != "idle"])
            if up is not None:
                notes.append(f"upstream echo {up:.2f} µs/op (not in server CPU)")
            if errors:
                notes.append("; ".join(sorted(set(errors))))
            bad = [r for r in rs if r.get("rc", 0) != 0]
            if bad:
                notes.append(f"{len(bad)} run(s) exited non-zero")
            lat = load != "idle"
            out.append(
                f"| {ldesc} | {sdesc} | {num(m)} | {unit} | {{ratio:{load}:{server}}} | "
                f"{', '.join(num(v) for v in vals)} | {num(mbps) if load in ('pingpong', 'pipelined', 'bulk') else '-'} | "
                f"{num(p50) if lat else '-'} | {num(p99) if lat else '-'} | "
                f"{num(mx) if lat else '-'} | {pct(cpu)} | {num(per_op)} | {pct(lg)} | {pct(sirq)} | {pct(other)} | "
                f"{corrupt} | {failed} | {'; '.join(notes)} |")
    text = "\n".join(out)
    for (load, server), s in summary.items():
        node = summary.get((load, BASELINE.get(server, "node")))
        r = (s["m"] / node["m"]) if node and node["m"] and s["m"] is not None else None
        text = text.replace(f"{{ratio:{load}:{server}}}", f"{r:.2f}×" if r is not None else "-")
    print(text)
    print()
    print("Medians over the runs; \"vs Node\" divides medians (the proxies: by Node's proxy) (for memory, lower is better); "
          "latency from a message's send to its last echoed byte (churn: connect to the "
          "server's FIN); server CPU = user+system time of the server's processes (netcore: "
          "daemon + actor) over the load's wall time, 100 % = one core of the 2; server µs/op = "
          "that CPU time per request (churn: per connection), the figure least disturbed by "
          "other load on the machine; loadgen CPU "
          "likewise; softirq = the kernel's softirq time (loopback TCP, charged to no process); "
          "other CPU = the rest of the machine's busy time in that window (noise from other "
          "processes; near 0 for a clean measurement).")
    print()
    redis = redis_table(res, na, deaths, wrong)
    targets(summary, redis, wrong)


def redis_table(res, na, deaths, wrong):
    """The redis loads: requests/s per test and depth, ratio vs the same logic on Node's
    net (asyncio for Python), server CPU µs per request. Returns {(test, p, server): dict}."""
    out = {}
    if not any(k[0].startswith("redis-") for k in res) and not any(s in na for s, _, _ in REDIS_SERVERS):
        return out
    lines = ["", "Redis protocol: redis-benchmark -c 50 -t ping_mbulk,set,get at -P 1 and -P 16 "
             "(a fixed -n, 5 times as many at -P 16, one redis-benchmark per test, after a warm-up), "
             "the same logic in every form but redis-server.",
             "",
             "| test | -P | server | median req/s | vs Node net / asyncio | every run | p50 µs | p99 µs "
             "| server CPU | server µs/req | errors | notes |",
             "|---|--:|---|--:|--:|---|--:|--:|--:|--:|--:|---|"]
    for p in (1, 16):
        for test, tname in REDIS_TESTS:
            load = f"redis-{test}-p{p}"
            for server, desc, _ in REDIS_SERVERS:
                rs = res.get((load, server))
                if not rs:
                    if server in na:
                        lines.append(f"| {tname} | {p} | {desc} | n/a ({na[server]}) |" + " |" * 8)
                    continue
                vals = [r.get("rate") for r in rs]
                errors = [r["error"] for r in rs if "error" in r]
                errors += ["a server process died, " + d for d in deaths.get((load, server), [])]
                out[(test, p, server)] = dict(
                    m=med(vals), errors=errors,
                    per_op=med([1e6 * r["cpu_s"] / r["count"] for r in rs if r.get("count")]),
                    p50=med([r.get("p50_us") for r in rs]), p99=med([r.get("p99_us") for r in rs]),
                    cpu=med([100 * r["cpu_s"] / r["wall_s"] for r in rs if r.get("wall_s")]),
                    vals=vals)
    for p in (1, 16):
        for test, tname in REDIS_TESTS:
            for server, desc, base in REDIS_SERVERS:
                v = out.get((test, p, server))
                if v is None:
                    continue
                b = out.get((test, p, base))
                ratio = f"{v['m'] / b['m']:.2f}×" if b and b["m"] and v["m"] else "-"
                notes = "; ".join(sorted(set(v["errors"])))
                lines.append(f"| {tname} | {p} | {desc} | {num(v['m'])} | {ratio} | "
                             f"{', '.join(num(x) for x in v['vals'])} | {num(v['p50'])} | {num(v['p99'])} | "
                             f"{pct(v['cpu'])} | {num(v['per_op'])} | {len(v['errors'])} | {notes} |")
    print("\n".join(lines))
    print()
    print("server µs/req = user+system CPU of the server's processes (through netcore: daemon + "
          "actor) over the requests of that redis-benchmark run; errors = runs where "
          "redis-benchmark failed (it exits on an error reply or a lost connection) or a server died.")
    if wrong:
        print("Wrong replies after the load (redis-cli PING and GET): " +
              "; ".join(f"{s}: {'; '.join(w)}" for s, w in sorted(wrong.items())))
    print()
    return out


def targets(summary, redis, wrong):
    def get(load, server):
        return summary.get((load, server))

    lines = []

    def ratio(what, have, base, need, hname, bname):
        if not have or not base or not have.get("m") or not base.get("m"):
            lines.append(f"- {what} ≥ {need}×: not measured ({hname} or {bname} missing)")
            return
        r = have["m"] / base["m"]
        if r >= need:
            lines.append(f"- {what} ≥ {need}×: **met**, {r:.2f}×")
        else:
            lines.append(f"- {what} ≥ {need}×: **missed**, {r:.2f}× "
                         f"({(1 - r / need) * 100:.0f} % short; needs {need * base['m']:,.0f}, "
                         f"has {have['m']:,.0f})")

    def echo(load, server, need, what, base="node"):
        ratio(what, get(load, server), get(load, base), need, server, base)

    # pipe echo (the seed's c.pipe(c))
    for load, name in [("pingpong", "ping-pong"), ("pipelined", "pipelined"), ("bulk", "bulk"),
                       ("churn", "churn (32 connectors)")]:
        echo(load, "netcore-c", 1.5, f"pipe echo, netcore + C, {name} vs Node")
    echo("bulk", "netcore-c", 0.8, "pipe echo, netcore + C, bulk vs the 1-process libuv echo", "libuv")
    for server, lang in [("netcore-python", "Python"), ("netcore-node", "Node.js")]:
        for load, name in [("pingpong", "ping-pong"), ("pipelined", "pipelined"), ("bulk", "bulk"),
                           ("churn", "churn")]:
            echo(load, server, 1.3, f"pipe echo, netcore + {lang}, {name} vs Node")
    # through the handler
    echo("pingpong", "netcore-c-via", 1.0, "through the C handler (--via-handler), ping-pong vs Node")
    echo("bulk", "netcore-c-via", 1.0, "through the C handler (--via-handler), bulk vs Node")
    via, node = get("bulk", "netcore-c-via"), get("bulk", "node")
    if via and node and via.get("per_op") and node.get("per_op"):
        r = via["per_op"] / node["per_op"]
        ok = r <= 1.2
        lines.append(f"- through the C handler, CPU per 64 KiB ≤ 1.2× Node's: **{'met' if ok else 'missed'}**, "
                     f"{via['per_op']:.1f} µs vs {node['per_op']:.1f} µs ({r:.2f}×)")
    else:
        lines.append("- through the C handler, CPU per 64 KiB ≤ 1.2× Node's: not measured")
    for test, tname in REDIS_TESTS:
        for p, need_c, need_js in ((1, 1.0, 0.6), (16, 1.5, 1.0)):
            base = redis.get((test, p, "redis-node-net"))
            ratio(f"Redis-protocol C actor, {tname} -P {p} vs the Node net version",
                  redis.get((test, p, "redis-c")), base, need_c, "redis-c", "redis-node-net")
            ratio(f"Redis-protocol JS actor, {tname} -P {p} vs the same code on Node's net",
                  redis.get((test, p, "redis-node")), base, need_js, "redis-node", "redis-node-net")
            ratio(f"Redis-protocol Python actor, {tname} -P {p} vs the same logic on asyncio",
                  redis.get((test, p, "redis-python")), redis.get((test, p, "redis-asyncio")), 1.0,
                  "redis-python", "redis-asyncio")
    for load, name in [("pingpong", "ping-pong"), ("pipelined", "pipelined"), ("bulk", "bulk")]:
        echo(load, "netcore-proxy", 1.2, f"proxy, {name} vs the Node proxy", "node-proxy")
    for server, what in [("netcore-c", "netcore + C echo"),
                         ("netcore-proxy", "netcore + C proxy (2 sockets per client connection)")]:
        idle = get("idle", server)
        if idle and idle["m"] is not None:
            ok = idle["m"] <= 2.0
            lines.append(f"- {what}: ≤ 2 KiB RSS per idle connection: **{'met' if ok else 'missed'}**,"
                         f" {idle['m']:.2f} KiB" + ("" if ok else f" ({idle['m'] - 2:.2f} KiB over)"))
        else:
            lines.append(f"- {what}: ≤ 2 KiB RSS per idle connection: not measured")
    dirty = [f"{l}/{s}: {v['corrupt']} corrupt B, {v['failed']} failed"
             + (f", {'; '.join(sorted(set(v['errors'])))}" if v["errors"] else "")
             for (l, s), v in summary.items() if v["corrupt"] or v["failed"] or v["errors"]]
    dirty += [f"redis {t} -P {p}/{s}: {'; '.join(sorted(set(v['errors'])))}"
              for (t, p, s), v in redis.items() if v["errors"]]
    dirty += [f"redis/{s}: wrong replies: {'; '.join(w)}" for s, w in sorted(wrong.items())]
    if dirty:
        lines.append("- zero corrupt bytes, failed connections and wrong replies: **missed**: "
                     + "; ".join(dirty))
    else:
        lines.append("- zero corrupt bytes, failed connections and wrong replies in every load: "
                     "**met** (for every server measured)")
    print("Targets of issue 18 (ratios of medians in this run):")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
