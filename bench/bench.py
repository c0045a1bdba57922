"""`make bench`: the backend under load on this machine, every figure a ratio or a
latency measured side by side in one run.

Starts FerretDB, redis-server, Keycloak, the backend under gunicorn with the production
settings (k8s/base/backend.env: 2 workers, rate limit on, INFO logs; local addresses
swapped in) and, in the same run, a ceiling app (bench/ceiling.py: bare Flask, same
gunicorn config, a constant body). The journal is 100,000 tasks over two years of
working days, signed in as Keycloak's demo user with a real Bearer token. wrk is the
load generator (it costs the 2 cores far less than Locust: measured here too, on the
ceiling). Throughput runs alternate (ceiling, day view, 304, each variant; again and
again) so that drift of a shared machine falls on all of them alike.

Writes bench/results/bench.json (figures, settings, machine), bench.md (the README's
table), bench.png (chart), profile-day.svg and profile-day.txt (py-spy on the workers
under the cached day view), and runs bench/import_bench.py and bench/flags_bench.py for
their figures.

A variant is a second backend with extra environment, measured against the first in the
same alternation: VARIANTS below (the rate limit, metrics and tracing switches), plus any
given as JSON in BENCH_VARIANTS, e.g.
  BENCH_VARIANTS='{"small near-cache": {"NEAR_CACHE_ENTRIES": "10"}}' make bench
"""
import contextlib
import csv
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import jwt
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # gunicorn's config path and the apps' relative defaults

from backend import create_app, journal  # noqa: E402
from bench.worklog import generate  # noqa: E402
from tests import servers  # noqa: E402
from tests.conftest import database_uri  # noqa: E402
from tests.keycloak import start_keycloak  # noqa: E402
from tests.kubelet import ConfigMapVolume  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WRK_SCRIPTS = ROOT / "bench" / "wrk"
# The bench tools' venv (locust, py-spy, matplotlib): scripts/bench-setup.sh --print-bin.
TOOLS = Path(os.environ.get("KYB_BENCH_BIN", ""))

JOURNAL_TASKS = 100_000
WORKING_DAYS = 522  # two years of weekdays
WORKERS = 2  # WEB_CONCURRENCY of k8s/base/backend.env
ROUNDS, ROUND_SECONDS = 5, 3
# One wrk thread drives 16 connections: more than the 2 x 4 gunicorn threads, so no worker
# waits for the generator; wrk's own CPU share is recorded with each run.
WRK_THREADS, WRK_CONNECTIONS = 1, 16
GENERATOR_SECONDS = 8
# A throughput run counts when no worker did more than this share of the workers' CPU.
MAX_WORKER_SHARE, BALANCE_TRIES = 0.75, 4
MIXED_SECONDS, MIXED_CONNECTIONS = 30, 4
# An uncached GET /stats over the big journal takes FerretDB a minute or more (below).
CACHED_SAMPLES, UNCACHED_SAMPLES = 200, 1
# The mixed load runs over a journal of its own, 10 tasks a working day for 100 days:
# FerretDB 1.24 filters nothing but _id in SQLite, so every uncached read, day list, stats
# and added task scans the whole collection (seconds at 5,000 tasks, 10-20 s at 100,000),
# and the writes make those reads uncached: over the big journal the load would measure
# FerretDB's scans only. With MONGODB_URI (indexes) it runs over the big journal.
MIXED_TASKS, MIXED_TASKS_PER_DAY = 1_000, 10
# FerretDB needs longer than production's socket timeout (5 x MONGODB_TIMEOUT_MS, at least
# 10 s) for an uncached read of the big journal.
SLOW_DATABASE_MS = 60_000
DIFFERENCES = ["RATE_LIMIT is 1000000 per minute (on, counted in Redis, never refusing the one bench user)",
               f"MONGODB_TIMEOUT_MS is {SLOW_DATABASE_MS} (FerretDB reads the big journal uncached for longer than "
               "production's socket timeout)",
               "METRICS_PORT and PROMETHEUS_MULTIPROC_DIR are each server's own (several backends run at once)",
               "FerretDB instead of MongoDB 7, unless MONGODB_URI is given"]
PROFILE_SECONDS = 8
# On, counted in Redis like production, but never refusing: the bench is one user.
RATE_LIMIT_ON = "1000000 per minute"
# name -> extra environment of a second backend, compared with the first (as deployed:
# rate limit, metrics on; tracing off). "{otlp}" is the address of a sink that takes the
# OTLP/HTTP exports in place of a collector (tests.servers.OtlpCollector).
VARIANTS = {
    "rate limit off": {"RATE_LIMIT": "off"},
    "metrics off": {"METRICS_ENABLED": "false"},
    "tracing on": {"OTEL_EXPORTER_OTLP_ENDPOINT": "{otlp}"},
}
TARGETS = {"ratio": 0.6, "goal": 0.9, "stats_speedup": 20, "import_seconds": 10, "flag_worst_seconds": 2}


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


# -- the machine ----------------------------------------------------------------------

def command_output(argv):
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (result.stdout + result.stderr).strip()


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory / 2**20, 1),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "kernel": platform.release(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def versions():
    from importlib.metadata import version

    def first_match(pattern, text):
        found = re.search(pattern, text or "")
        return found[1] if found else None

    keycloak = (ROOT / "scripts" / "setup-keycloak.sh").read_text()
    return {
        "python": platform.python_version(),
        **{name: version(name) for name in ("flask", "gunicorn", "werkzeug", "pymongo", "redis", "limits",
                                            "PyJWT", "openfeature-sdk")},
        "redis-server": first_match(r"v=(\S+)", command_output(["redis-server", "--version"])),
        "ferretdb": servers.FERRETDB_VERSION,
        "keycloak": first_match(r"KEYCLOAK_VERSION=(\S+)", keycloak),
        "wrk": first_match(r"wrk (\S+)", command_output(["wrk", "--version"])),
        "locust": first_match(r"locust (\S+)", command_output([str(TOOLS / "locust"), "--version"])),
        "py-spy": first_match(r"py-spy (\S+)", command_output([str(TOOLS / "py-spy"), "--version"])),
        "matplotlib": command_output([str(TOOLS / "python"), "-c", "import matplotlib; print(matplotlib.__version__)"]),
    }


# -- the servers --------------------------------------------------------------------------

def production_settings():
    """k8s/base/backend.env: what the backend runs with on the cluster."""
    lines = (ROOT / "k8s" / "base" / "backend.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def serve(app, env, log_path):
    """`app:create_app()` under gunicorn (config/gunicorn.conf.py), answering /healthz.

    Several backends run at once here: each gets a metrics port and directory of its own.
    """
    env = {key: value for key, value in env.items() if key not in ("PORT", "WEB_CONCURRENCY")}
    if env.get("METRICS_PORT"):
        env["METRICS_PORT"] = str(servers.free_port())
    if env.get("PROMETHEUS_MULTIPROC_DIR"):
        env["PROMETHEUS_MULTIPROC_DIR"] = str(log_path.with_suffix(".metrics"))
    server = servers.gunicorn(app, env, log_path, workers=WORKERS)
    server.start()
    deadline = time.monotonic() + 60
    while True:  # gunicorn listens before its workers have booted
        try:
            if requests.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or server.process.poll() is not None:
            raise RuntimeError(f"{app} does not serve; see {log_path}")
        time.sleep(0.1)


def worker_pids(server):
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def flags_on(tmp):
    """The flags as a kubelet-style ConfigMap volume, every feature on, the kill switch off."""
    document = json.loads((ROOT / "config" / "flags.json").read_text())
    for name in ("markdown_import", "stats", "carry_over"):
        document["flags"][name]["defaultVariant"] = "on"
    document["flags"]["read_only"]["defaultVariant"] = "off"
    volume = ConfigMapVolume(tmp / "flags", {"flags.json": json.dumps(document)})
    return str(volume.root / "flags.json")


class Api:
    """The backend's API as the signed-in user (a fresh token whenever one is needed)."""

    def __init__(self, url, keycloak):
        self.url, self.keycloak = f"{url}/api/v1", keycloak
        self.http = requests.Session()

    def token(self):
        return self.keycloak.token("ann")["access_token"]

    def call(self, method, path, **kwargs):
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        response = self.http.request(method, self.url + path, headers=headers, timeout=120, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response


# -- load generators ------------------------------------------------------------------------

def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url, seconds, headers=(), connections=WRK_CONNECTIONS, threads=WRK_THREADS, script="summary.lua",
            env=None, strict=True):
    """One wrk run; its summary (requests, latency, errors) and its own CPU seconds.

    `strict`: any error (an HTTP status >= 400, a timeout, a broken connection) stops the bench.
    """
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "60s",
            "-s", str(WRK_SCRIPTS / script)]
    for header in headers:
        argv += ["-H", header]
    cpu = children_cpu()
    result = subprocess.run(argv + [url], capture_output=True, text=True, env=dict(os.environ, **(env or {})),
                            timeout=seconds + 120)
    cpu = children_cpu() - cpu
    line = next((line for line in result.stdout.splitlines() if line.startswith("BENCH ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}\n{result.stderr}")
    summary = json.loads(line[len("BENCH "):])
    elapsed = summary["duration_us"] / 1e6
    summary.update(requests_per_second=round(summary["requests"] / elapsed, 1),
                   generator_cpu_seconds=round(cpu, 3), generator_cpu_share=round(cpu / elapsed, 3))
    bad = {k: v for k, v in summary["errors"].items() if v}
    if bad and strict:
        raise RuntimeError(f"wrk {url}: errors {bad} (see the server logs)")
    return summary


def run_locust(url, seconds, users, tmp):
    """One headless Locust run (FastHttpUser, no wait); requests, failures and its CPU seconds."""
    prefix = tmp / "locust"
    argv = [str(TOOLS / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "--users", str(users),
            "--spawn-rate", str(users), "--run-time", f"{seconds}s", "--host", url, "--csv", str(prefix),
            "--only-summary", "--loglevel", "WARNING"]
    cpu = children_cpu()
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    elapsed = time.monotonic() - started
    cpu = children_cpu() - cpu
    if result.returncode != 0:
        raise RuntimeError(f"locust failed ({result.returncode}): {result.stderr[-2000:]}")
    with open(f"{prefix}_stats.csv") as f:
        total = next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")
    requests_made = int(total["Request Count"])
    return {"requests": requests_made, "failures": int(total["Failure Count"]),
            "requests_per_second": round(float(total["Requests/s"]), 1),
            "generator_cpu_seconds": round(cpu, 3), "generator_cpu_share": round(cpu / elapsed, 3)}


def generator_costs(ceiling_url, tmp):
    """wrk and Locust on the ceiling for the same time and connections: CPU seconds per 10,000 requests."""
    costs = {}
    wrk = run_wrk(ceiling_url + "/", GENERATOR_SECONDS)
    costs["wrk"] = {"requests": wrk["requests"], "requests_per_second": wrk["requests_per_second"],
                    "generator_cpu_seconds": wrk["generator_cpu_seconds"]}
    costs["locust"] = run_locust(ceiling_url, GENERATOR_SECONDS, WRK_CONNECTIONS, tmp)
    for cost in costs.values():
        cost["cpu_seconds_per_10k_requests"] = round(cost["generator_cpu_seconds"] / cost["requests"] * 1e4, 3)
    costs["chosen"] = min(("wrk", "locust"), key=lambda name: costs[name]["cpu_seconds_per_10k_requests"])
    costs["how"] = (f"each on the ceiling for {GENERATOR_SECONDS} s with {WRK_CONNECTIONS} connections/users "
                    "(Locust: FastHttpUser, no wait); CPU of the whole generator process, startup included")
    return costs


# -- the measurements -------------------------------------------------------------------------

def schedule(variants):
    """One round's runs, as (run, target): the day view and the 304 between two runs of the
    ceiling, then each variant right after a run of the backend as deployed, so that every
    ratio compares runs next to each other in time."""
    order = [("ceiling", "ceiling"), ("day view", "day view"), ("304", "304"), ("ceiling after", "ceiling")]
    for name in variants:
        order += [(f"day view before {name}", "day view"), (f"day view, {name}", f"day view, {name}")]
    return order


def cpu_seconds(pid):
    """utime + stime of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def balanced_run(server, url, headers):
    """One wrk run in which both workers served: its summary, with the workers' CPU per request.

    wrk opens its connections at once and keeps them; now and then one gunicorn worker
    accepts all of them while the other sleeps, and the run measures one core (it
    happens to the ceiling and to the backend alike, at random). Such a run is made
    again, up to BALANCE_TRIES times; the summary says how many were."""
    pids = worker_pids(server)
    for attempt in range(1, BALANCE_TRIES + 1):
        before = [cpu_seconds(pid) for pid in pids]
        summary = run_wrk(url, ROUND_SECONDS, headers)
        used = [cpu_seconds(pid) - b for pid, b in zip(pids, before)]
        busiest = max(used) / max(sum(used), 1e-9)
        if busiest <= MAX_WORKER_SHARE or attempt == BALANCE_TRIES:
            summary.update(attempts=attempt, busiest_worker_share=round(busiest, 2),
                           worker_cpu_us_per_request=round(sum(used) / summary["requests"] * 1e6, 1))
            return summary
        log(f"  one worker did {busiest:.0%} of the work: run again")


def throughput_rounds(targets, order):
    """The runs of `order` for ROUND_SECONDS each, ROUNDS times: {run: [wrk summary per round]}."""
    runs = {run: [] for run, _ in order}
    for n in range(ROUNDS):
        for run, target in order:
            url, headers, server = targets[target]
            summary = balanced_run(server, url, headers())
            runs[run].append(summary)
            log(f"round {n + 1}/{ROUNDS} {run}: {summary['requests_per_second']} req/s, "
                f"p99 {summary['latency_us']['p99'] / 1000:.1f} ms, wrk CPU {summary['generator_cpu_share']:.0%}, "
                f"{summary['worker_cpu_us_per_request']:.0f} µs of worker CPU a request")
    return runs


def per_round(runs, name, *bases):
    """name's throughput / the mean throughput of the `bases` runs, round by round."""
    return [round(run["requests_per_second"] / statistics.mean(b["requests_per_second"] for b in around), 3)
            for run, *around in zip(runs[name], *(runs[base] for base in bases))]


def ratio(runs, name, *bases):
    """The median over the rounds of name's throughput / the bases' in the same round."""
    return round(statistics.median(per_round(runs, name, *bases)), 3)


def spread(values):
    return f"{min(values):.2f}–{max(values):.2f}"


def cpu_ratio(runs, name, *bases):
    """The bases' worker CPU per request / name's, median over the rounds (1 = as cheap)."""
    return round(statistics.median(
        statistics.mean(b["worker_cpu_us_per_request"] for b in around) / run["worker_cpu_us_per_request"]
        for run, *around in zip(runs[name], *(runs[base] for base in bases))), 3)


def brief(runs):
    return {"requests_per_second": [r["requests_per_second"] for r in runs],
            "worker_cpu_us_per_request": round(statistics.median(r["worker_cpu_us_per_request"] for r in runs), 1),
            "runs_made_again": sum(r["attempts"] - 1 for r in runs),
            "latency_ms": {q: round(statistics.median(r["latency_us"][q] for r in runs) / 1000, 2)
                           for q in ("p50", "p99")},
            "generator_cpu_share": round(statistics.median(r["generator_cpu_share"] for r in runs), 3)}


def stats_timings(api, task_id):
    """GET /stats: cached (repeated reads) against uncached (the read after a write), in seconds."""
    def timed_stats():
        started = time.perf_counter()
        api.http.get(f"{api.url}/stats", headers={"Authorization": f"Bearer {token}"}, timeout=600) \
            .raise_for_status()
        return time.perf_counter() - started

    token = api.token()
    uncached = []
    for n in range(UNCACHED_SAMPLES):
        # A write makes every whole-journal view stale: the next read recomputes the stats.
        api.call("PATCH", f"/tasks/{task_id}", json={"done": n % 2 == 0})
        uncached.append(timed_stats())
        log(f"uncached stats {n + 1}/{UNCACHED_SAMPLES}: {uncached[-1]:.2f} s")
    for _ in range(20):
        timed_stats()  # every worker has it now
    cached = [timed_stats() for _ in range(CACHED_SAMPLES)]
    return {
        "uncached_seconds": [round(s, 3) for s in uncached],
        "cached_median_ms": round(statistics.median(cached) * 1000, 2),
        "uncached_median_seconds": round(statistics.median(uncached), 3),
        "speedup": round(statistics.median(uncached) / statistics.median(cached), 1),
        "how": ("one client, one request at a time; uncached = the first GET /stats after a PATCH that ticks a "
                "task (the write invalidates every whole-journal view, so the stats are recomputed by MongoDB); "
                f"cached = the median of {CACHED_SAMPLES} GETs that follow"),
    }


def mixed_plan(api, dates, tmp):
    """The mixed load's requests (80 % reads, 20 % writes on the last days), as a plan file for
    mixed.lua; every day it reads is read once first (the older days stay cached)."""
    recent, older = dates[-5:], dates[:-5]
    tasks = [task["id"] for date in recent for task in api.call("GET", f"/days/{date}").json()["tasks"]][:40]
    sampled = older[:: max(1, len(older) // 10)]
    for date in sampled:
        api.call("GET", f"/days/{date}")
    lines = []
    for date in recent:
        lines.append(("GET /days/{recent day}", 40 / len(recent), "GET", f"/api/v1/days/{date}", ""))
    for date in sampled:
        lines.append(("GET /days/{older day}", 30 / len(sampled), "GET", f"/api/v1/days/{date}", ""))
    lines.append(("GET /days", 5, "GET", "/api/v1/days", ""))
    lines.append(("GET /stats", 5, "GET", "/api/v1/stats", ""))
    for n, task in enumerate(tasks):
        body = json.dumps({"done": n % 2 == 0})
        lines.append(("PATCH /tasks/{id}", 12 / len(tasks), "PATCH", f"/api/v1/tasks/{task}", body))
    for date in recent:
        lines.append(("POST /days/{recent day}/tasks", 8 / len(recent), "POST", f"/api/v1/days/{date}/tasks",
                      json.dumps({"text": "Bench task"})))
    path = tmp / "mixed-plan.tsv"
    path.write_text("".join(f"{name}\t{weight:.4f}\t{method}\t{url}\t{body}\n"
                            for name, weight, method, url, body in lines))
    return path


def mixed_load(api, backend_url, dates, tmp):
    """p50/p99 per endpoint under the mixed load (wrk, one connection per thread)."""
    plan = mixed_plan(api, dates, tmp)
    samples_path = tmp / "mixed-samples.txt"
    summary = run_wrk(f"{backend_url}/", MIXED_SECONDS, connections=MIXED_CONNECTIONS, threads=MIXED_CONNECTIONS,
                      script="mixed.lua", env={"BENCH_PLAN": str(plan), "BENCH_TOKEN": api.token(),
                                               "BENCH_SAMPLES": str(samples_path)}, strict=False)
    by_name, statuses = {}, {}
    for line in samples_path.read_text().splitlines():
        name, status, micros = line.rsplit(" ", 2)
        by_name.setdefault(name, []).append(int(micros) / 1000)
        statuses.setdefault(name, {}).setdefault(status, 0)
        statuses[name][status] += 1
    endpoints = {}
    for name, values in sorted(by_name.items()):
        values.sort()
        endpoints[name] = {"requests": len(values), "statuses": statuses[name],
                           "p50_ms": round(percentile(values, 50), 2), "p99_ms": round(percentile(values, 99), 2)}
    writes = sum(e["requests"] for name, e in endpoints.items() if not name.startswith("GET"))
    return {"connections": MIXED_CONNECTIONS, "seconds": MIXED_SECONDS,
            "requests_per_second": summary["requests_per_second"], "errors": summary["errors"],
            "write_share": round(writes / max(1, sum(e["requests"] for e in endpoints.values())), 3),
            "endpoints": endpoints}


def percentile(ordered, q):
    """The q-th percentile (nearest rank) of a sorted list."""
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# -- the profile --------------------------------------------------------------------------------

def profile(server, url, headers, tmp):
    """py-spy on the backend's workers under the cached day view. CPU (--gil: the thread
    holding the GIL, which bounds a worker's throughput) as a flame graph and a summary;
    wall-clock (every busy thread: waits on Redis, locks) as a second summary."""
    runs = [("cpu", "flamegraph", RESULTS / "profile-day.svg"), ("cpu", "raw", tmp / "cpu.raw"),
            ("wall", "raw", tmp / "wall.raw")]
    for kind, fmt, out in runs:
        argv = [str(TOOLS / "py-spy"), "record", "--pid", str(server.process.pid), "--subprocesses",
                "--duration", str(PROFILE_SECONDS), "--rate", "250", "--function", "--format", fmt,
                "--output", str(out), "--nonblocking", *(["--gil"] if kind == "cpu" else [])]
        spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1)  # py-spy attaches
        run_wrk(url, PROFILE_SECONDS - 2, headers())
        _, error = spy.communicate(timeout=60)
        if spy.returncode != 0:
            raise RuntimeError(f"py-spy failed: {error}")
    cpu = summarize_profile((tmp / "cpu.raw").read_text(), "CPU (py-spy --gil)")
    wall = summarize_profile((tmp / "wall.raw").read_text(), "wall-clock (py-spy, busy threads)")
    (RESULTS / "profile-day.txt").write_text(cpu["text"] + "\n" + wall["text"])
    return {"cpu_samples": cpu["samples"], "cpu_top_inclusive": cpu["inclusive"][:25], "cpu_top_self": cpu["self"][:15],
            "wall_samples": wall["samples"], "wall_top_inclusive": wall["inclusive"][:25],
            "flamegraph": "bench/results/profile-day.svg (CPU)", "summary": "bench/results/profile-day.txt"}


def summarize_profile(raw, what):
    """Collapsed stacks ("frame;frame;... count") -> shares of samples by function, inclusive and self."""
    inclusive, own, total = {}, {}, 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        count = int(count)
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")]
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count

    def ranked(table):
        return [{"function": frame, "share": round(n / total, 4)}
                for frame, n in sorted(table.items(), key=lambda item: -item[1])]

    inclusive_ranked, own_ranked = ranked(inclusive), ranked(own)
    text = [f"{what}: {total} samples of the backend's workers under the cached day view", "",
            "inclusive share (the function and what it calls):"]
    text += [f"{row['share']:7.1%}  {row['function']}" for row in inclusive_ranked[:60]]
    text += ["", "self share (the function's own code):"]
    text += [f"{row['share']:7.1%}  {row['function']}" for row in own_ranked[:40]]
    return {"samples": total, "inclusive": inclusive_ranked, "self": own_ranked, "text": "\n".join(text) + "\n"}


# -- the report ---------------------------------------------------------------------------------

def markdown_table(report):
    """The README's Benchmarks table."""
    t, m = report["throughput"], report["machine"]
    rows = [
        (f"cached day view ({t['day_tasks']} tasks), throughput / ceiling",
         f"{t['day_view_ratio']:.2f} (rounds {spread(t['day_view_ratio_rounds'])})",
         "≥ 0.6 (goal 0.9)"),
        ("304 Not Modified (If-None-Match), throughput / ceiling",
         f"{t['not_modified_ratio']:.2f} (rounds {spread(t['not_modified_ratio_rounds'])})",
         "≥ 0.6 (goal 0.9)"),
        ("worker CPU per request, ceiling / cached day view (and / 304)",
         f"{t['day_view_cpu_ratio']:.2f} ({t['ceiling']['worker_cpu_us_per_request']:.0f} µs / "
         f"{t['day_view']['worker_cpu_us_per_request']:.0f} µs; 304: {t['not_modified_cpu_ratio']:.2f})", ""),
    ]
    for name, value in report["variants"].items():
        rows.append((f"day view with {name}, throughput / as deployed",
                     f"{value['ratio']:.2f} (rounds {spread(value['ratio_rounds'])})", ""))
    rows.append((f"day view uncached (FerretDB reads all {report['journal']['tasks']:,} tasks)",
                 f"{t['day_view_uncached_seconds']:.1f} s", ""))
    s = report["stats"]
    rows.append(("stats over the journal, uncached / cached time",
                 f"{s['speedup']:.0f}× ({s['uncached_median_seconds']:.2f} s vs {s['cached_median_ms']:.1f} ms)",
                 "≥ 20×"))
    mixed = report["mixed_load"]
    for name, e in mixed["endpoints"].items():
        rows.append((f"mixed 80/20 load ({mixed['journal']['tasks']:,} tasks, {mixed['connections']} connections): "
                     f"{name}", f"p50 {e['p50_ms']:.1f} ms, p99 {e['p99_ms']:.1f} ms ({e['requests']} requests)", ""))
    i, f = report["import"], report["flags"]
    rows.append((f"Markdown import of {i['tasks']:,} tasks", f"{i['import_seconds']:.1f} s", "< 10 s"))
    rows.append(("flag swap until every worker sees it (worst of 20)", f"{f['worst_seconds']:.2f} s", "< 2 s"))
    e = f["evaluation_microseconds"]
    rows.append(("one flag evaluation (the rollout flag): SDK client / provider / bare evaluator",
                 f"{e['sdk_client']:.0f} / {e['provider']:.0f} / {e['evaluate']:.0f} µs", ""))
    g = report["generators"]
    rows.append(("load generator CPU per 10k requests: wrk vs Locust",
                 f"{g['wrk']['cpu_seconds_per_10k_requests']:.2f} s vs "
                 f"{g['locust']['cpu_seconds_per_10k_requests']:.2f} s", "the cheaper one is used"))
    lines = ["| what | figure | target |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append("")
    lines.append(f"Measured {m['date'][:10]} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
                 f"(load average {m['load_average_before'][0]} before the start); ceiling "
                 f"{statistics.median(t['ceiling']['requests_per_second']):.0f} req/s; "
                 f"{sum(t[k]['runs_made_again'] for k in ('ceiling', 'day_view', 'not_modified'))} throughput runs "
                 "made again because one worker had taken every connection; "
                 f"`make bench` took {report['wall_seconds'] / 60:.1f} min.")
    return "\n".join(lines) + "\n"


def chosen_variants(otlp_url):
    """VARIANTS and BENCH_VARIANTS, each setting one the backend reads (config.py, or OTEL_* for the SDK)."""
    from backend import config

    given = os.environ.get("BENCH_VARIANTS")
    variants = dict(VARIANTS, **(json.loads(given) if given else {}))
    for name, env in variants.items():
        unread = [key for key in env if key not in config.SETTINGS and not key.startswith("OTEL_")]
        if unread:
            raise SystemExit(f"bench: variant {name!r} sets {unread}, which the backend does not read")
    return {name: {key: value.replace("{otlp}", otlp_url) for key, value in env.items()}
            for name, env in variants.items()}


@contextlib.contextmanager
def running(server_or_process):
    try:
        yield server_or_process
    finally:
        server_or_process.stop()


class KeycloakProcess:
    def __init__(self, home):
        home.mkdir(parents=True)
        self.server, self.process = start_keycloak(home)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def run_script(name, writes):
    """bench/NAME.py as a subprocess; the report it writes to bench/results/WRITES."""
    log(f"running bench/{name}.py")
    result = subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py")], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bench/{name}.py failed:\n{result.stdout}\n{result.stderr}")
    return json.loads((RESULTS / writes).read_text())


def all_dates(api):
    """The journal's days, oldest first (the API answers 500 at most per page)."""
    dates, after = [], None
    while True:
        page = api.call("GET", "/days", params={"limit": 500, **({"after": after} if after else {})}).json()
        dates += [day["date"] for day in page["items"]]
        after = page["next"]
        if not after:
            return dates


def count_tasks(tree):
    """The tasks of a task tree, nested ones included."""
    return sum(1 + count_tasks(task["children"]) for task in tree)


def journal_dates(text):
    """The days of a generated journal, oldest first (from its headings: no query needed)."""
    return [dt.date(2000 + int(y), int(m), int(d)).isoformat()
            for d, m, y in re.findall(r"^## Dag (\d+)\.(\d+)\.(\d+) ", text, re.M)]


def import_journal(uri, redis_url, user, text):
    """The journal imported for `user` (in this process, as import_bench does); its counts."""
    app = create_app({"MONGODB_URI": uri, "REDIS_URL": redis_url, "MONGODB_TIMEOUT_MS": SLOW_DATABASE_MS})
    try:
        with app.app_context():
            return journal.import_markdown(user, text, "replace")
    finally:
        app.extensions["kyb.mongo"].close()


def main():
    if not (TOOLS / "py-spy").exists() or shutil.which("wrk") is None:
        raise SystemExit("bench: run it with `make bench` (it installs wrk and the bench tools first)")
    started = time.monotonic()
    report = {"machine": machine(), "versions": versions(), "targets": TARGETS}
    RESULTS.mkdir(parents=True, exist_ok=True)
    # The two scripts of their own first, on a quiet machine: their figures are absolute times.
    report["import"] = run_script("import_bench", "import.json")
    report["flags"] = run_script("flags_bench", "flags.json")

    with tempfile.TemporaryDirectory() as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        log("starting the database, redis-server and Keycloak")
        base_uri = os.environ.get("MONGODB_URI")
        if not base_uri:
            ferretdb = stack.enter_context(running(servers.ferretdb(tmp / "ferretdb").start()))
            base_uri = f"mongodb://127.0.0.1:{ferretdb.port}/"
        redis_server = stack.enter_context(running(servers.redis(tmp / "redis").start()))
        keycloak_box = {}

        def start():  # Keycloak takes a while: the journals are made meanwhile
            try:
                keycloak_box["kc"] = KeycloakProcess(tmp / "keycloak")
            except Exception as exc:  # noqa: BLE001 - reported below, in the main thread
                keycloak_box["error"] = exc

        starter = threading.Thread(target=start)
        starter.start()
        text = generate(JOURNAL_TASKS, tasks_per_day=math.ceil(JOURNAL_TASKS / WORKING_DAYS))
        mixed_text = (text if os.environ.get("MONGODB_URI")
                      else generate(MIXED_TASKS, tasks_per_day=MIXED_TASKS_PER_DAY))
        starter.join()
        if "kc" not in keycloak_box:
            raise RuntimeError(f"Keycloak did not start: {keycloak_box.get('error')}")
        keycloak = stack.enter_context(running(keycloak_box["kc"])).server
        # The big journal, and the mixed load's in a database (and Redis database) of its own.
        mongodb_uri, mixed_uri = database_uri(base_uri, "kyb_bench"), database_uri(base_uri, "kyb_bench_mixed")
        redis_url = f"redis://127.0.0.1:{redis_server.port}/0"
        mixed_redis_url = f"redis://127.0.0.1:{redis_server.port}/1"
        user = jwt.decode(keycloak.token("ann")["access_token"], options={"verify_signature": False})["sub"]

        log("importing the journals of the signed-in user")
        imported = import_journal(mongodb_uri, redis_url, user, text)
        mixed_imported = import_journal(mixed_uri, mixed_redis_url, user, mixed_text)

        settings = dict(production_settings(), MONGODB_URI=mongodb_uri,
                        REDIS_URL=redis_url, OIDC_ISSUER=keycloak.issuer, OIDC_JWKS_URL="",
                        AUTH_DEV_USER_HEADER="false", FLAGS_FILE=flags_on(tmp), RATE_LIMIT=RATE_LIMIT_ON,
                        MONGODB_TIMEOUT_MS=str(SLOW_DATABASE_MS))
        backend = stack.enter_context(running(serve("backend", settings, tmp / "backend.log")))
        api = Api(backend.url, keycloak)
        dates = journal_dates(text)
        day = dates[-2]  # the last day is a partial one
        log(f"the day view of {day}, uncached first")
        started_uncached = time.perf_counter()
        response = api.call("GET", f"/days/{day}")
        uncached_day_seconds = time.perf_counter() - started_uncached
        etag, body = response.headers["ETag"], response.content
        (tmp / "ceiling.json").write_bytes(body)
        ceiling = stack.enter_context(running(serve("bench.ceiling", {"CEILING_BODY_FILE": str(tmp / "ceiling.json")},
                                                    tmp / "ceiling.log")))
        otlp = stack.enter_context(running(servers.OtlpCollector()))
        variants = chosen_variants(otlp.url)
        variant_servers = {name: stack.enter_context(running(serve("backend", dict(settings, **env),
                                                                   tmp / f"variant-{n}.log")))
                           for n, (name, env) in enumerate(variants.items())}

        def bearer():
            return [f"Authorization: Bearer {api.token()}"]

        day_url = f"{{}}/api/v1/days/{day}"
        targets = {"ceiling": (ceiling.url + "/", lambda: [], ceiling),
                   "day view": (day_url.format(backend.url), bearer, backend),
                   "304": (day_url.format(backend.url), lambda: bearer() + [f"If-None-Match: {etag}"], backend)}
        for name, server in variant_servers.items():
            targets[f"day view, {name}"] = (day_url.format(server.url), bearer, server)
        for url, headers, _ in targets.values():  # every worker verifies the token and fills its caches
            run_wrk(url, 2, headers())

        log("load generators: wrk against Locust on the ceiling")
        report["generators"] = generator_costs(ceiling.url, tmp)
        order = schedule(variants)
        log(f"throughput: {ROUNDS} rounds of {', '.join(run for run, _ in order)}, {ROUND_SECONDS} s each")
        runs = throughput_rounds(targets, order)
        ceilings = ("ceiling", "ceiling after")
        report["throughput"] = {
            "ceiling": brief(runs["ceiling"] + runs["ceiling after"]), "day_view": brief(runs["day view"]),
            "not_modified": brief(runs["304"]),
            "day_view_ratio": ratio(runs, "day view", *ceilings), "not_modified_ratio": ratio(runs, "304", *ceilings),
            "day_view_ratio_rounds": per_round(runs, "day view", *ceilings),
            "day_view_cpu_ratio": cpu_ratio(runs, "day view", *ceilings),
            "not_modified_cpu_ratio": cpu_ratio(runs, "304", *ceilings),
            "not_modified_ratio_rounds": per_round(runs, "304", *ceilings),
            "day": day, "day_tasks": count_tasks(json.loads(body)["tasks"]), "body_bytes": len(body),
            "day_view_uncached_seconds": round(uncached_day_seconds, 2),
            "how": (f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}, {ROUNDS} rounds of {ROUND_SECONDS} s runs; in each "
                    "round the day view and the 304 run between two runs of the ceiling; ratio = the median over "
                    "the rounds of throughput / the mean of that round's two ceiling runs; the ceiling answers "
                    "the day view's bytes; a run in which one worker did more than "
                    f"{MAX_WORKER_SHARE:.0%} of the workers' CPU is made again (up to {BALANCE_TRIES} times); "
                    "cpu ratio = the ceiling's worker CPU per request / the backend's (the same median)"),
        }
        report["variants"] = {name: {"env": variants[name],
                                     "ratio": ratio(runs, f"day view, {name}", f"day view before {name}"),
                                     "ratio_rounds": per_round(runs, f"day view, {name}", f"day view before {name}"),
                                     **brief(runs[f"day view, {name}"])} for name in variants}
        report["variants_how"] = ("day view throughput of a backend with the variant's settings / the backend as "
                                  "deployed in the run just before it, median over the rounds; the tracing variant "
                                  "exported to a local OTLP sink "
                                  f"({len(otlp.received)} exports received)")

        log("profiling the cached day view with py-spy")
        report["profile"] = profile(backend, day_url.format(backend.url), bearer, tmp)
        log("stats, cached and uncached")
        some_task = json.loads(body)["tasks"][0]["id"]
        report["stats"] = stats_timings(api, some_task)

        log(f"mixed load for {MIXED_SECONDS} s over a journal of {mixed_imported['tasks']:,} tasks")
        mixed_backend = stack.enter_context(running(serve("backend", dict(settings, MONGODB_URI=mixed_uri,
                                                                          REDIS_URL=mixed_redis_url),
                                                          tmp / "backend-mixed.log")))
        report["mixed_load"] = mixed_load(Api(mixed_backend.url, keycloak), mixed_backend.url,
                                          journal_dates(mixed_text), tmp)
        report["mixed_load"]["journal"] = {"tasks": mixed_imported["tasks"], "days": mixed_imported["days"]}
        report["journal"] = {"tasks": imported["tasks"], "days": imported["days"], "bytes": len(text.encode()),
                             "first_day": dates[0], "last_day": dates[-1]}
        report["settings"] = {key: value for key, value in settings.items()
                              if key not in ("MONGODB_URI", "REDIS_URL", "FLAGS_FILE", "OIDC_ISSUER")}
        report["settings"]["database"] = ("MONGODB_URI" if os.environ.get("MONGODB_URI")
                                          else f"FerretDB {servers.FERRETDB_VERSION} (SQLite)")
        report["settings"]["differences_from_production"] = DIFFERENCES

    report["wall_seconds"] = round(time.monotonic() - started, 1)
    (RESULTS / "bench.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / "bench.md").write_text(markdown_table(report))
    chart = subprocess.run([str(TOOLS / "python"), str(ROOT / "bench" / "chart.py"), str(RESULTS / "bench.json"),
                            str(RESULTS / "bench.png")], capture_output=True, text=True)
    if chart.returncode != 0:
        raise RuntimeError(f"bench/chart.py failed: {chart.stderr}")
    print(markdown_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
