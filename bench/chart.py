"""bench/results/bench.json as a chart: python bench/chart.py BENCH_JSON OUT_PNG.

Run by `make bench` with the bench tools' venv (matplotlib; scripts/bench-setup.sh).
"""
import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def bars(ax, names, values, labels, color, rounds=None):
    """Horizontal bars, first name on top, each labelled at its end; `rounds` (the value of
    each round, per bar) draws the range of the rounds as a whisker."""
    positions = list(range(len(names)))[::-1]
    xerr = None
    if rounds:
        xerr = [[v - min(r) for v, r in zip(values, rounds)], [max(r) - v for v, r in zip(values, rounds)]]
    drawn = ax.barh(positions, values, color=color, height=0.6, xerr=xerr, capsize=4)
    ax.set_yticks(positions, names)
    ax.bar_label(drawn, labels=labels, padding=3, fontsize=9)
    ax.margins(x=0.25)


def against_ceiling(ax, report):
    t, targets = report["throughput"], report["targets"]
    values = [t["day_view_ratio"], t["not_modified_ratio"]]
    bars(ax, [f"day view ({t['day_tasks']} tasks, 200)", "day view, 304 Not Modified"], values,
         [f"{v:.2f}" for v in values], "tab:blue", [t["day_view_ratio_rounds"], t["not_modified_ratio_rounds"]])
    ax.axvline(targets["ratio"], color="tab:red", linestyle="--", label=f"target {targets['ratio']}")
    ax.axvline(targets["goal"], color="tab:green", linestyle=":", label=f"goal {targets['goal']}")
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("throughput / ceiling (bare Flask, same gunicorn, same bytes); median and range of the rounds")
    ceiling = statistics.median(t["ceiling"]["requests_per_second"])
    ax.set_title(f"Cached day view against the ceiling ({ceiling:.0f} req/s)")
    ax.legend(loc="lower right", fontsize=8)


def variants(ax, report):
    names = list(report["variants"])
    values = [report["variants"][name]["ratio"] for name in names]
    bars(ax, names, values, [f"{v:.2f}" for v in values], "tab:gray",
         [report["variants"][name]["ratio_rounds"] for name in names])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("day view throughput / as deployed (rate limit and metrics on, tracing off)")
    ax.set_title("What each switch costs or saves")


def mixed(ax, report):
    m = report["mixed_load"]
    names = list(m["endpoints"])
    positions = list(range(len(names)))[::-1]
    p50 = [m["endpoints"][n]["p50_ms"] for n in names]
    p99 = [m["endpoints"][n]["p99_ms"] for n in names]
    ax.barh([p + 0.2 for p in positions], p50, height=0.4, color="tab:blue", label="p50")
    ax.barh([p - 0.2 for p in positions], p99, height=0.4, color="tab:orange", label="p99")
    ax.set_yticks(positions, [f"{n} ({m['endpoints'][n]['requests']})" for n in names], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log)")
    ax.set_title(f"Mixed 80/20 load over {m['journal']['tasks']:,} tasks, {m['connections']} connections, "
                 f"{m['requests_per_second']:.0f} req/s")
    ax.legend(fontsize=8)


def costs(ax, report):
    s, g = report["stats"], report["generators"]
    names = ["GET /stats, cached", "GET /stats, uncached", "wrk CPU per 10k requests", "Locust CPU per 10k requests"]
    values = [s["cached_median_ms"] / 1000, s["uncached_median_seconds"],
              g["wrk"]["cpu_seconds_per_10k_requests"], g["locust"]["cpu_seconds_per_10k_requests"]]
    bars(ax, names, values, [f"{v:.3g} s" for v in values], ["tab:blue", "tab:gray", "tab:green", "tab:purple"])
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log)")
    ax.set_title(f"Stats cached {s['speedup']:,.0f}x faster; the load generators' own CPU")


def main(source, target):
    with open(source) as f:
        report = json.load(f)
    figure, axes = plt.subplots(2, 2, figsize=(16, 9))
    against_ceiling(axes[0][0], report)
    variants(axes[0][1], report)
    mixed(axes[1][0], report)
    costs(axes[1][1], report)
    m = report["machine"]
    figure.suptitle(f"kyb `make bench`, {m['date'][:10]}: {m['cpu']}, {m['cores']} cores (load average "
                    f"{m['load_average_before'][0]} before); import of {report['import']['tasks']:,} tasks "
                    f"{report['import']['import_seconds']:.1f} s; flag swap seen by every worker within "
                    f"{report['flags']['worst_seconds']:.2f} s")
    figure.tight_layout()
    figure.savefig(target, dpi=100)


if __name__ == "__main__":
    main(*sys.argv[1:3])
