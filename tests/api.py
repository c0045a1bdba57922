"""Small helpers that keep API tests readable."""
from pathlib import Path

# A copy of the user's own log (shared/seed/worklog.md), kept byte for byte.
SEED_PATH = Path(__file__).resolve().parent / "seed" / "worklog.md"
SEED = SEED_PATH.read_bytes()


def create_day(client, date, **hours):
    response = client.post("/api/v1/days", json={"date": date, **hours})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def add_task(client, date, text, **extra):
    response = client.post(f"/api/v1/days/{date}/tasks", json={"text": text, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def import_seed(client, mode="replace"):
    response = client.post(f"/api/v1/import?mode={mode}", data=SEED, content_type="text/markdown")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def texts(tasks):
    """Task texts of a tree, depth-first, each prefixed by two spaces per level."""
    out = []
    stack = [(t, 0) for t in reversed(tasks)]
    while stack:
        task, depth = stack.pop()
        out.append("  " * depth + task["text"])
        stack.extend((c, depth + 1) for c in reversed(task["children"]))
    return out


def find(tasks, text):
    stack = list(tasks)
    while stack:
        task = stack.pop()
        if task["text"] == text:
            return task
        stack.extend(task["children"])
    raise AssertionError(f"no task {text!r}")
