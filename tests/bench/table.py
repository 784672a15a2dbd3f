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
]
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
    for r in rows:
        if "died" in r:
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
                                           errors=errors, n=len(rs))
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
        node = summary.get((load, "node"))
        r = (s["m"] / node["m"]) if node and node["m"] and s["m"] is not None else None
        text = text.replace(f"{{ratio:{load}:{server}}}", f"{r:.2f}×" if r is not None else "-")
    print(text)
    print()
    print("Medians over the runs; \"vs Node\" divides medians (for memory, lower is better); "
          "latency from a message's send to its last echoed byte (churn: connect to the "
          "server's FIN); server CPU = user+system time of the server's processes (netcore: "
          "daemon + actor) over the load's wall time, 100 % = one core of the 2; server µs/op = "
          "that CPU time per request (churn: per connection), the figure least disturbed by "
          "other load on the machine; loadgen CPU "
          "likewise; softirq = the kernel's softirq time (loopback TCP, charged to no process); "
          "other CPU = the rest of the machine's busy time in that window (noise from other "
          "processes; near 0 for a clean measurement).")
    print()
    targets(summary)


def targets(summary):
    def get(load, server):
        return summary.get((load, server))

    lines = []

    def ratio_target(load, need, what):
        nc, node = get(load, "netcore-c"), get(load, "node")
        if not nc or not node or not nc["m"] or not node["m"]:
            lines.append(f"- {what}: not measured (netcore + C echo or Node missing)")
            return
        r = nc["m"] / node["m"]
        if r >= need:
            lines.append(f"- {what} ≥ {need}× Node: **met**, {r:.2f}×")
        else:
            lines.append(f"- {what} ≥ {need}× Node: **missed**, {r:.2f}× "
                         f"({(1 - r / need) * 100:.0f} % short; needs {need * node['m']:,.0f}, "
                         f"has {nc['m']:,.0f})")

    ratio_target("pingpong", 1.5, "ping-pong requests/s")
    nc, node = get("pingpong", "netcore-c"), get("pingpong", "node")
    if nc and node and nc["p99"] and node["p99"]:
        ok = nc["p99"] <= node["p99"]
        lines.append(f"- ping-pong p99 ≤ Node's: **{'met' if ok else 'missed'}**, "
                     f"{nc['p99']:.0f} µs vs {node['p99']:.0f} µs"
                     + ("" if ok else f" ({(nc['p99'] / node['p99'] - 1) * 100:.0f} % over)"))
    ratio_target("pipelined", 1.0, "pipelined requests/s")
    ratio_target("bulk", 1.0, "bulk requests/s")
    ratio_target("churn", 1.0, "churn connections/s (32 connectors)")
    ratio_target("churn8", 1.0, "churn connections/s with 8 connectors (latency-bound, for information)")
    idle = get("idle", "netcore-c")
    if idle and idle["m"] is not None:
        ok = idle["m"] <= 2.0
        lines.append(f"- netcore ≤ 2 KiB RSS per idle connection: **{'met' if ok else 'missed'}**,"
                     f" {idle['m']:.2f} KiB" + ("" if ok else f" ({idle['m'] - 2:.2f} KiB over)"))
    else:
        lines.append("- netcore ≤ 2 KiB RSS per idle connection: not measured")
    dirty = [f"{l}/{s}: {v['corrupt']} corrupt B, {v['failed']} failed"
             + (f", {'; '.join(sorted(set(v['errors'])))}" if v["errors"] else "")
             for (l, s), v in summary.items() if v["corrupt"] or v["failed"] or v["errors"]]
    if dirty:
        lines.append("- zero corrupt bytes and failed connections: **missed**: " + "; ".join(dirty))
    else:
        lines.append("- zero corrupt bytes and failed connections in every load: **met** "
                     "(for every server measured)")
    print("Targets (netcore + C echo vs Node, same run):")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
