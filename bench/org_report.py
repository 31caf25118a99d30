"""bench/org.py's verdicts against issue 16's targets, and the markdown table for docs/benchmarks.md."""
from __future__ import annotations

POSTURE_KEY = "render, data caches empty (median)"


def verdict(name: str, value, target: str, ok) -> dict:
    return {"measure": name, "value": value, "target": target, "pass": ok}


def scan_verdicts(name: str, run: dict, rate: float) -> list[dict]:
    if "error" in run:
        return [verdict(f"{name}: completed", run["error"], "completes", False)]
    calls = run["server"]["requests"]
    bound = calls / rate
    out = [verdict(f"{name}: wall ÷ (calls ÷ moto's rate)",
                   f"{run['wall_s']:.1f} s ÷ ({calls:,} ÷ {rate:.0f}/s = {bound:.1f} s) = {run['wall_s'] / bound:.2f}×",
                   "≤ 2×", run["wall_s"] <= 2 * bound),
           verdict(f"{name}: coordinator peak RSS", f"{run['coordinator_peak_rss_mb']} MB", "≤ 500 MB",
                   run["coordinator_peak_rss_mb"] <= 500),
           verdict(f"{name}: denied accounts reported unreachable, every other read",
                   f"{len(run['unreachable'])} unreachable; {run['accounts_with_records']} of {run['accounts']} "
                   f"with records", "exactly the denied set; all others", run["reach"]["pass"])]
    if run.get("collection_process_peak_rss_mb"):
        out.append(verdict(f"{name}: collection process's peak RSS", f"{run['collection_process_peak_rss_mb']} MB",
                           "(reported)", None))
    if "workers" in run:
        peaks = [w["peak_rss_mb"] for w in run["workers"].values()]
        out.append(verdict(f"{name}: workers' peak RSS", " / ".join(f"{p} MB" for p in peaks), "(reported)", None))
    return out


def latency_verdicts(lat: dict) -> list[dict]:
    latency_s = lat["plan"]["latency_ms"] / 1000
    out = []
    for key in ("local", "cluster1", "cluster2"):
        run = lat.get(key)
        if not run:
            continue
        if "error" in run:
            out.append(verdict(f"latency, {key}: completed", run["error"], "completes", False))
            continue
        calls = run["server"]["requests"]
        bound = calls * latency_s / run["in_flight"]
        out.append(verdict(f"latency {lat['plan']['latency_ms']} ms, {key} ({run['in_flight']} in flight): wall ÷ "
                           "(calls × latency ÷ in flight)",
                           f"{run['wall_s']:.1f} s ÷ ({calls:,} × {latency_s} ÷ {run['in_flight']} = {bound:.1f} s) = "
                           f"{run['wall_s'] / bound:.2f}× (server saw {run['server']['mean_in_flight']} in flight on "
                           f"average, at most {run['server']['max_in_flight']})", "≤ 1.5×", run["wall_s"] <= 1.5 * bound))
        if "reach" in run:
            out.append(verdict(f"latency, {key}: denied accounts reported unreachable, every other read",
                               f"{len(run['unreachable'])} unreachable; {run['accounts_with_records']} of "
                               f"{run['accounts']} with records", "exactly the denied set; all others",
                               run["reach"]["pass"]))
    if all(key in lat and "error" not in lat[key] for key in ("cluster1", "cluster2")):
        one, two = lat["cluster1"], lat["cluster2"]
        out.append(verdict("cluster's in-flight capacity grows with its workers (1 → 2)",
                           f"{one['wall_s']:.1f} s → {two['wall_s']:.1f} s; mean in flight "
                           f"{one['server']['mean_in_flight']} → {two['server']['mean_in_flight']}",
                           "2 workers faster, more in flight",
                           two["wall_s"] < one["wall_s"] and two["server"]["mean_in_flight"] > one["server"]["mean_in_flight"]))
    return out


def judge(result: dict) -> list[dict]:
    rate = result["moto_rate"]["calls_per_s"]
    # the local scan's, or the cluster's alone (--skip-local), or the local latency scan's (--latency-only)
    first = next(iter(result["scans"].values()), None) or result["latency"]["local"]
    accounts = result["build"]["accounts"]
    out = [verdict("calls per account (server count, 2 regions)",
                   f"{first['server']['requests'] / accounts:.1f} ({first['server']['requests']:,} calls, "
                   f"{accounts} accounts; the run recorded {first['api_calls']:,})", "(reported)", None)]
    for name, run in result["scans"].items():
        out += scan_verdicts(f"scan {name}", run, rate)
    if "latency" in result:
        out += latency_verdicts(result["latency"])
    posture = result["posture"].get(POSTURE_KEY)
    out.append(verdict("posture page, data caches empty (median)", f"{posture:.2f} s", "≤ 1 s", posture <= 1.0))
    demo = result["demo_packet"]["wall_s"]
    out.append(verdict("packet of the organisation's quarter ÷ the demo quarter's",
                       f"{result['packet']['wall_s']:.1f} s ÷ {demo:.1f} s = {result['packet']['wall_s'] / demo:.2f}×",
                       "≤ 2×", result["packet"]["wall_s"] <= 2 * demo))
    return out


def markdown(result: dict) -> str:
    mark = {True: "**PASS**", False: "**FAIL**", None: ""}
    lines = [f"`bench/org.py --accounts {result['build']['accounts']}` ({result['started']}, load "
             f"{result['load_average'][0]:.1f}): built {result['build']['resources_created']:,} resources in "
             f"{result['build']['seconds']} s; moto's own rate {result['moto_rate']['calls_per_s']} calls/s.",
             "", "| measure | value | target | |", "|---|---|---|---|"]
    for v in result["verdicts"]:
        lines.append(f"| {v['measure']} | {v['value']} | {v['target']} | {mark[v['pass']]} |")
    lines += ["", "Where the time goes (wall of the `auditbook scan` process; the run's own collection time; the "
              "server's first-to-last request window; calls; calls in flight at the server, mean / most):", "",
              "| scan | wall | collection | server window | calls | in flight | coordinator RSS |", "|---|---|---|---|---|---|---|"]
    runs = [(f"{k}", v) for k, v in result.get("scans", {}).items()]
    runs += [(f"latency {k}", v) for k, v in result.get("latency", {}).items() if k != "plan"]
    for name, run in runs:
        if "error" in run:
            lines.append(f"| {name} | failed | | | | | |")
            continue
        s = run["server"]
        lines.append(f"| {name} | {run['wall_s']:.1f} s | {run['collection_s']:.1f} s | {s['window_s']:.1f} s | "
                     f"{s['requests']:,} | {s['mean_in_flight']} / {s['max_in_flight']} | {run['coordinator_peak_rss_mb']} MB |")
    if result.get("cluster_skipped"):
        lines += ["", result["cluster_skipped"]]
    return "\n".join(lines) + "\n"
