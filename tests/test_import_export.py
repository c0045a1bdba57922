import subprocess
import sys
from pathlib import Path

import pytest
from hamcrest import assert_that, contains_string, equal_to, has_entries, starts_with

from tests.api import SEED, SEED_PATH, create_day, import_seed

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.md"))


def test_the_seed_log_round_trips_byte_for_byte(client):
    import_seed(client)
    assert_that(client.get("/api/v1/export").data, equal_to(SEED))


def test_importing_the_seed_reports_what_it_created(client):
    # Counted by hand in worklog.md: 3 day headings; 29 + 7 + 3 day tasks and 8 backlog
    # items; 27 + 5 + 2 done; one task (Aggregate in Mongodb) open on 20.3 and done on 23.3.
    assert_that(import_seed(client), has_entries(days=3, tasks=47, done=34, backlog=8, carried=1))


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_every_corpus_file_round_trips_through_the_database(client, path):
    data = path.read_bytes()
    response = client.post("/api/v1/import?mode=replace", data=data, content_type="text/markdown")
    assert_that(response.status_code, equal_to(201))
    assert_that(client.get("/api/v1/export").data, equal_to(data))


def test_replace_mode_drops_what_was_there(client):
    create_day(client, "2026-03-02")
    import_seed(client, mode="replace")
    assert_that(client.get("/api/v1/days/2026-03-02").status_code, equal_to(404))


def test_merge_mode_appends_the_file_after_the_journal(client):
    create_day(client, "2026-03-02")
    before = client.get("/api/v1/export").get_data()
    import_seed(client, mode="merge")
    assert_that(client.get("/api/v1/export").get_data(), equal_to(before + SEED))


def test_merging_a_day_that_exists_adds_its_tasks_to_that_day(client):
    create_day(client, "2020-03-23")
    result = import_seed(client, mode="merge")
    assert_that(result["days"], equal_to(2))
    tasks = client.get("/api/v1/days/2020-03-23").get_json()["tasks"]
    assert_that(len(tasks), equal_to(3))


def test_export_of_a_date_range_holds_only_those_days(client):
    import_seed(client)
    text = client.get("/api/v1/export?from=2020-03-20&to=2020-03-20").get_data(as_text=True)
    assert_that(text, starts_with("## Dag 20.3.20 kl 9:30\n"))
    assert_that("Dag 19.3.20" in text or "Backlog" in text, equal_to(False))


def test_a_broken_file_is_refused_and_changes_nothing(client):
    import_seed(client)
    deep = "".join("  " * n + "- [ ] x\n" for n in range(200))
    for data, code in ((b"\xff\xfe bad utf-8", "invalid_encoding"), (b"a\x00b", "invalid_markdown"),
                       (deep.encode(), "invalid_markdown")):
        response = client.post("/api/v1/import?mode=replace", data=data, content_type="text/markdown")
        assert_that(response.status_code, equal_to(400))
        assert_that(response.get_json()["code"], equal_to(code))
    assert_that(client.get("/api/v1/export").data, equal_to(SEED))


def test_import_needs_an_explicit_mode(client):
    response = client.post("/api/v1/import", data=SEED, content_type="text/markdown")
    assert_that(response.status_code, equal_to(400))
    assert_that(response.get_json()["errors"][0]["field"], equal_to("mode"))


def test_import_refuses_other_media_types(client):
    response = client.post("/api/v1/import?mode=merge", data=SEED, content_type="application/pdf")
    assert_that(response.status_code, equal_to(415))


def test_the_cli_imports_a_file_and_exports_it_again(mongodb_uri, database_name, tmp_path):
    from tests.conftest import database_uri

    env = {"MONGODB_URI": database_uri(mongodb_uri, database_name), "REDIS_URL": "", "PATH": "/usr/bin:/bin"}
    flask = [sys.executable, "-m", "flask", "--app", "backend"]
    root = Path(__file__).resolve().parents[1]
    imported = subprocess.run(flask + ["import", str(SEED_PATH), "--user", "cli", "--mode", "replace"],
                              cwd=root, env=env, capture_output=True, check=True)
    assert_that(imported.stdout.decode(), contains_string('"tasks": 47'))
    exported = subprocess.run(flask + ["export", "--user", "cli"], cwd=root, env=env, capture_output=True,
                              check=True)
    assert_that(exported.stdout, equal_to(SEED))
    ranged = subprocess.run(flask + ["export", "--user", "cli", "--from", "2020-03-23"], cwd=root, env=env,
                            capture_output=True, check=True)
    assert_that(ranged.stdout.decode(), starts_with("## Dag 23.3.20 kl 9:00\n"))


def test_a_replace_import_leaves_no_cached_view_of_the_days_it_dropped(client):
    create_day(client, "2026-10-10")
    assert_that(client.get("/api/v1/days/2026-10-10").status_code, equal_to(200))  # now cached
    import_seed(client, mode="replace")
    assert_that(client.get("/api/v1/days/2026-10-10").status_code, equal_to(404))
