"""How long a kubelet-style ConfigMap swap takes to reach every gunicorn worker.

Starts the backend under gunicorn (3 workers), swaps flags.json 20 times the way
kubelet does, and after each swap measures the time until 60 requests in a row,
12 at a time on fresh connections, all see the new value. Writes
bench/results/flags.json.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kubelet import ConfigMapVolume  # noqa: E402
from tests.servers import free_port, wait_for_port  # noqa: E402

SWAPS, WORKERS = 20, 3


def flag_document(read_only):
    doc = json.loads((ROOT / "config" / "flags.json").read_text())
    doc["flags"]["read_only"]["defaultVariant"] = "on" if read_only else "off"
    return json.dumps(doc)


def evaluation_cost():
    """Microseconds per evaluation of the rollout flag: through the SDK, the provider, and evaluate()."""
    import timeit

    from openfeature.evaluation_context import EvaluationContext

    from backend.flags import FlagFile, FlagFileProvider, Flags, evaluate

    flags = Flags(str(ROOT / "config" / "flags.json"), "bench")
    provider = FlagFileProvider(FlagFile(str(ROOT / "config" / "flags.json")))
    context = EvaluationContext(targeting_key="ann", attributes={"user_id": "ann"})
    table = provider.file.current()
    n = 20_000
    ways = {
        "sdk_client": lambda: flags.value("progress_bar", "ann"),
        "provider": lambda: provider.resolve_boolean_details("progress_bar", False, context),
        "evaluate": lambda: evaluate(table, "progress_bar", {"targetingKey": "ann", "user_id": "ann"}),
    }
    return {name: round(min(timeit.repeat(fn, number=n, repeat=3)) / n * 1e6, 2) for name, fn in ways.items()}


def main():
    cost = evaluation_cost()
    with tempfile.TemporaryDirectory() as tmp:
        volume = ConfigMapVolume(Path(tmp) / "flags", {"flags.json": flag_document(False)})
        port = free_port()
        env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY=str(WORKERS), REDIS_URL="", LOG_LEVEL="WARNING",
                   FLAGS_FILE=str(volume.root / "flags.json"), RATE_LIMIT="100000 per minute",
                   AUTH_DEV_USER_HEADER="true")
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                                   "backend:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/api/v1/flags"
        try:
            wait_for_port(port, server)

            def value(_):
                return requests.get(url, headers={"Connection": "close"}, timeout=5).json()["flags"]["read_only"]

            seconds = []
            with ThreadPoolExecutor(12) as pool:
                for n in range(1, SWAPS + 1):
                    wanted = n % 2 == 1
                    volume.update({"flags.json": flag_document(wanted)})
                    started = time.monotonic()
                    while not all(v == wanted for v in pool.map(value, range(60))):
                        if time.monotonic() - started > 10:
                            raise SystemExit("a worker did not see the swap within 10 s")
                    seconds.append(time.monotonic() - started)
        finally:
            server.terminate()
            server.wait(10)
    report = {"swaps": SWAPS, "workers": WORKERS, "median_seconds": round(statistics.median(seconds), 3),
              "worst_seconds": round(max(seconds), 3), "all_seconds": [round(s, 3) for s in seconds],
              "evaluation_microseconds": cost,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    (ROOT / "bench" / "results" / "flags.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
