"""End-to-end smoke test of a running kyb backend: health, then one day's whole life.

    python scripts/smoke.py BASE_URL [--date YYYY-MM-DD]

BASE_URL is the backend (e.g. http://127.0.0.1:8000, or a `kubectl port-forward` to
svc/backend). A backend that trusts Keycloak's tokens only (as on Kubernetes) needs one:
the environment variable KYB_TOKEN holds an access token (docs/keycloak.md shows how to get
one with curl); without it the calls name no user (the development backend of `make run`
answers for its default user). The script creates a day, adds a task, ticks it, reads the day, checks
the Markdown export, and deletes the day again. It refuses to touch a day that exists
already, so it never deletes a user's data. Exit status 0 means every step passed.
"""
import argparse
import os
import sys
import uuid

import requests

TIMEOUT_SECONDS = 10


class SmokeFailure(Exception):
    pass


def expect(response, status, step):
    if response.status_code != status:
        raise SmokeFailure(f"{step}: expected {status}, got {response.status_code}: {response.text[:500]}")
    print(f"ok   {step}")
    return response


def find_task(tasks, task_id):
    """The task with `task_id` anywhere in a day's task tree."""
    for task in tasks:
        if task["id"] == task_id:
            return task
        found = find_task(task.get("children", []), task_id)
        if found:
            return found
    return None


def smoke(base_url, date, token=None):
    """Run every step against `base_url` (as the user of `token`, if given); raises
    SmokeFailure at the first that fails."""
    base_url = base_url.rstrip("/")
    api = f"{base_url}/api/v1"
    http = requests.Session()
    if token:
        http.headers["Authorization"] = f"Bearer {token}"
    text = f"kyb smoke test {uuid.uuid4().hex[:8]}"

    expect(http.get(f"{base_url}/healthz", timeout=TIMEOUT_SECONDS), 200, "backend is alive (/healthz)")
    expect(http.get(f"{base_url}/readyz", timeout=TIMEOUT_SECONDS), 200, "backend reaches MongoDB (/readyz)")
    existing = http.get(f"{api}/days/{date}", timeout=TIMEOUT_SECONDS).status_code
    if existing == 401:
        raise SmokeFailure("the backend wants an access token: set KYB_TOKEN (see docs/keycloak.md)")
    if existing != 404:
        raise SmokeFailure(f"day {date} exists already: choose another with --date, so no real data is touched")

    new_day = {"date": date, "start": "09:00", "end": "17:00"}
    expect(http.post(f"{api}/days", json=new_day, timeout=TIMEOUT_SECONDS), 201, f"create day {date}")
    try:
        task = expect(http.post(f"{api}/days/{date}/tasks", json={"text": text}, timeout=TIMEOUT_SECONDS),
                      201, "add a task").json()
        expect(http.patch(f"{api}/tasks/{task['id']}", json={"done": True}, timeout=TIMEOUT_SECONDS),
               200, "tick the task")

        day = expect(http.get(f"{api}/days/{date}", timeout=TIMEOUT_SECONDS), 200, "read the day").json()
        found = find_task(day["tasks"], task["id"])
        if found is None or found["done"] is not True:
            raise SmokeFailure(f"read the day: the ticked task is not in it as done: {day['tasks']}")
        print("ok   the day holds the ticked task")

        export = expect(http.get(f"{api}/export", params={"from": date, "to": date}, timeout=TIMEOUT_SECONDS),
                        200, "export the day as Markdown")
        markdown = export.headers.get("Content-Type", "").startswith("text/markdown")
        if not markdown or f"[x] {text}" not in export.text:
            raise SmokeFailure(f"export: no ticked '{text}' in the Markdown:\n{export.text[:500]}")
        print("ok   the export has the ticked task")
    except BaseException:
        http.delete(f"{api}/days/{date}", timeout=TIMEOUT_SECONDS)  # leave nothing behind
        raise
    expect(http.delete(f"{api}/days/{date}", timeout=TIMEOUT_SECONDS), 204, f"delete day {date}")
    expect(http.get(f"{api}/days/{date}", timeout=TIMEOUT_SECONDS), 404, "the day is gone")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", metavar="BASE_URL", help="the backend, e.g. http://127.0.0.1:8000")
    parser.add_argument("--date", default="2026-01-05", help="the day to create and delete (must not exist)")
    args = parser.parse_args(argv)
    try:
        smoke(args.base_url, args.date, os.environ.get("KYB_TOKEN"))
    except (SmokeFailure, requests.RequestException) as failure:
        print(f"FAIL {failure}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
