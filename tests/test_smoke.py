"""`make smoke` (scripts/smoke.py) against the real local stack, so the script itself is proven."""
import subprocess
import sys
from pathlib import Path

from hamcrest import assert_that, equal_to

ROOT = Path(__file__).resolve().parents[1]


def test_the_smoke_script_passes_against_the_local_stack(backend_server):
    run = subprocess.run([sys.executable, "scripts/smoke.py", backend_server.url], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert_that((run.returncode, run.stderr[-2000:]), equal_to((0, run.stderr[-2000:])))
