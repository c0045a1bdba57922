"""Time the import of a generated 50,000-task journal into a fresh FerretDB (or MONGODB_URI).

Writes bench/results/import.json. Run with `make import-bench`.
"""
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import create_app, journal  # noqa: E402
from bench.worklog import generate  # noqa: E402
from tests import servers  # noqa: E402

TASKS = 50_000


def main():
    text = generate(TASKS)
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        uri = os.environ.get("MONGODB_URI")
        if not uri:
            server = servers.ferretdb(Path(tmp) / "ferretdb").start()
            uri = f"mongodb://127.0.0.1:{server.port}/kyb_bench"
        try:
            # One insert_many of 50,000 tasks can take FerretDB longer than the production socket
            # timeout (5 x MONGODB_TIMEOUT_MS, at least 10 s) on a busy machine; this measures the time.
            app = create_app({"MONGODB_URI": uri, "REDIS_URL": "", "MONGODB_TIMEOUT_MS": 60_000})
            with app.app_context():
                started = time.perf_counter()
                result = journal.import_markdown("bench", text, "replace")
                import_seconds = time.perf_counter() - started
                started = time.perf_counter()
                exported = journal.export_markdown("bench")
                export_seconds = time.perf_counter() - started
        finally:
            if server:
                server.stop()
    report = {
        "tasks": result["tasks"], "days": result["days"], "bytes": len(text.encode()),
        "import_seconds": round(import_seconds, 2), "export_seconds": round(export_seconds, 2),
        "round_trip_identical": exported == text, "database": "MONGODB_URI" if os.environ.get("MONGODB_URI")
        else "FerretDB v1.24.2 (SQLite)", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    out = ROOT / "bench" / "results" / "import.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if report["round_trip_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
