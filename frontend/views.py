"""The pages: today, any day, a week, all days, backlog, notes, import, export and stats.

Every change is a plain form POST answered by a redirect (POST-redirect-GET),
so the pages work without JavaScript; htmx posts the same forms and swaps in
the part of the page that changed.
"""
import datetime as dt
import re

from flask import Blueprint, Response, flash, g, redirect, render_template, request, session, url_for
from werkzeug.routing import BaseConverter, ValidationError

from . import charts, flags, tree
from .backend_client import Invalid, backend
from .errors import switched_off
from .security import safe_next

bp = Blueprint("pages", __name__)
DAYS_PER_PAGE = 50
# The main menu: (endpoint, label); flags.GATED_PAGES hides the entries of switched-off features.
NAV = [("pages.today_page", "Today"), ("pages.this_week", "Week"), ("pages.days", "Days"),
       ("pages.backlog", "Backlog"), ("pages.notes", "Notes"), ("pages.stats", "Stats"),
       ("pages.import_page", "Import"), ("pages.export_page", "Export")]


def is_date(value):
    """True for a real calendar date written YYYY-MM-DD."""
    try:
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and bool(dt.date.fromisoformat(value))
    except ValueError:
        return False


class DateConverter(BaseConverter):
    """A real calendar date in a URL, as YYYY-MM-DD; anything else is a 404."""

    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value):
        if not is_date(value):
            raise ValidationError()
        return value


class WeekConverter(BaseConverter):
    """An ISO week in a URL, as 2026-W48."""

    regex = r"\d{4}-W\d{2}"

    def to_python(self, value):
        try:
            dt.date.fromisocalendar(int(value[:4]), int(value[6:]), 1)
        except ValueError:
            raise ValidationError() from None
        return value


@bp.record_once
def _converters(state):
    state.app.url_map.converters.update(date=DateConverter, week=WeekConverter)


# -- small helpers -----------------------------------------------------------------

def today():
    return dt.date.today().isoformat()


def shift(date, days):
    return (dt.date.fromisoformat(date) + dt.timedelta(days=days)).isoformat()


def week_of(date):
    year, week, _ = dt.date.fromisoformat(date).isocalendar()
    return f"{year}-W{week:02d}"


def field(name):
    """A submitted field, trimmed; None when empty."""
    return (request.form.get(name) or "").strip() or None


def required_text(name, message, strip=True):
    """A submitted text that must not be blank, trimmed unless `strip` is false.

    Browsers send a textarea's line ends as CRLF; the journal keeps its own line ends.
    """
    text = (request.form.get(name) or "").replace("\r\n", "\n")
    if not text.strip():
        raise Invalid(message, [{"field": name, "message": message}])
    return text.strip() if strip else text


def back(default):
    """Redirect to the page the form came from (POST-redirect-GET)."""
    return redirect(safe_next(request.form.get("next"), default), 303)


def date_range(args):
    """(from, to) of a query string, each None when empty; given the wrong way round, swapped."""
    start, end = (args.get("from") or None), (args.get("to") or None)
    if start and end and end < start:
        start, end = end, start
    return start, end


@bp.app_template_filter("hours")
def hours(minutes):
    """Minutes as H:MM."""
    return f"{minutes // 60}:{minutes % 60:02d}"


@bp.app_template_filter("long_date")
def long_date(date):
    """2026-11-25 as "Wednesday 25 November 2026"."""
    d = dt.date.fromisoformat(date)
    return f"{d:%A} {d.day} {d:%B %Y}"


@bp.app_context_processor
def _page_context():
    # `here` is the page a form sits on, where it returns to; a form shown again
    # after an error names it in g.here, since the request path is then the POST's.
    # `flags` are the request's feature flags (one backend call per page); `writable` is
    # false while the journal is read-only, and then no page offers a form that changes it.
    current = flags.current()
    return {"here": g.get("here") or request.full_path.rstrip("?"), "today": today(),
            "nav": [(endpoint, label) for endpoint, label in NAV if flags.shown(endpoint)],
            "flags": current, "writable": not current["read_only"]}


# -- days ----------------------------------------------------------------------------

def day_page(date):
    day = backend().find_day(date)
    if day:
        tree.plan_moves(day["tasks"])
    return render_template("day.html", date=date, day=day, tomorrow=shift(date, 1), yesterday=shift(date, -1),
                           week=week_of(date), choices=tree.flatten(day["tasks"]) if day else [],
                           progress=tree.count(day["tasks"]) if day else (0, 0))


@bp.get("/")
def today_page():
    return day_page(today())


@bp.get("/days/<date:date>")
def day(date):
    return day_page(date)


@bp.get("/days")
def days():
    after = request.args.get("after") or None
    listing = backend().list_days(limit=DAYS_PER_PAGE, after=after)
    return render_template("days.html", days=listing["items"], next_after=listing["next"], after=after)


@bp.get("/days/go")
def go_to_day():
    date = request.args.get("date") or today()
    if not is_date(date):
        raise Invalid("Choose a date as YYYY-MM-DD.")
    return redirect(url_for("pages.day", date=date))


@bp.post("/days")
def create_day():
    date = field("date")
    if not date:
        raise Invalid("Choose the day's date.", [{"field": "date", "message": "Choose a date."}])
    created = backend().create_day(date, field("start"), field("end"))
    flash(f"Started {long_date(created['date'])}.")
    if created["date"] == today():
        return redirect(url_for("pages.today_page"), 303)
    return redirect(url_for("pages.day", date=created["date"]), 303)


@bp.post("/days/<date:date>/hours")
def change_hours(date):
    backend().change_hours(date, field("start"), field("end"), field("version"))
    flash("Hours saved.")
    return back(url_for("pages.day", date=date))


@bp.post("/days/<date:date>/tasks")
def add_task(date):
    text = required_text("text", "Write what the task is.")
    backend().add_task(date, text, field("parent_id"))
    flash("Task added.")
    return back(url_for("pages.day", date=date))


@bp.post("/days/<date:date>/carry-over")
def carry_over(date):
    to = field("to")
    if not to:
        raise Invalid("Choose the day to carry the tasks to.", [{"field": "to", "message": "Choose a date."}])
    carried = backend().carry_over(date, to)["carried"]
    flash(f"Carried {len(carried)} unfinished task{'s' * (len(carried) != 1)} to {long_date(to)}.")
    return back(url_for("pages.day", date=date))


@bp.get("/days/<date:date>/delete")
def confirm_delete_day(date):
    return render_template("delete_day.html", day=backend().get_day(date))


@bp.post("/days/<date:date>/delete")
def delete_day(date):
    backend().delete_day(date)
    flash(f"Deleted {long_date(date)} with its tasks and notes.")
    return redirect(url_for("pages.days"), 303)


@bp.get("/week")
def this_week():
    return redirect(url_for("pages.week", week=week_of(today())))


@bp.get("/weeks/<week:week>")
def week(week):
    monday = dt.date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    dates = [(monday + dt.timedelta(days=i)).isoformat() for i in range(7)]
    listing = backend().list_days(dates[0], dates[-1], limit=7)
    found = {d["date"]: d for d in listing["items"]}
    return render_template("week.html", week=week, days=[(date, found.get(date)) for date in dates],
                           minutes=sum(d["minutes"] for d in found.values()),
                           done=sum(d["counts"]["done"] for d in found.values()),
                           total=sum(d["counts"]["total"] for d in found.values()),
                           previous=week_of(shift(dates[0], -7)), following=week_of(shift(dates[0], 7)))


def ensure_day(date):
    """Make the day if the journal has none for `date` (moving a task there needs one)."""
    if date and backend().find_day(date) is None:
        backend().create_day(date)


# -- tasks ---------------------------------------------------------------------------

def task_home(task):
    """The page a task is shown on: its day, or the backlog."""
    return url_for("pages.day", date=task["date"]) if task["date"] else url_for("pages.backlog")


@bp.get("/tasks/<task_id>")
def task(task_id):
    return render_template("task.html", task=backend().get_task(task_id))


@bp.post("/tasks/<task_id>")
def change_task(task_id):
    text = required_text("text", "Write what the task is.")
    changed = backend().change_task(task_id, field("version"), text=text)
    flash("Task saved.")
    return redirect(task_home(changed), 303)


@bp.post("/tasks/<task_id>/tick")
def tick(task_id):
    changed = backend().change_task(task_id, done=request.form.get("done") == "true")
    return back(task_home(changed))


@bp.post("/tasks/<task_id>/move")
def move_task(task_id):
    """Move within the tree (`to` = "parent id/index" from the move buttons) or to a day or the backlog."""
    parent_id, _, index = (request.form.get("to") or "/").partition("/")
    if not request.form.get("to"):
        ensure_day(field("date"))
    moved = backend().move_task(task_id, field("date"), parent_id or None, int(index) if index.isdigit() else None)
    if request.form.get("to"):
        return back(task_home(moved))
    flash(f"Moved to {long_date(moved['date']) if moved['date'] else 'the backlog'}.")
    return redirect(task_home(moved), 303)


@bp.post("/tasks/<task_id>/delete")
def delete_task(task_id):
    backend().delete_task(task_id)
    flash("Task deleted.")
    return back(url_for("pages.today_page"))


@bp.get("/backlog")
def backlog():
    items = tree.plan_moves(backend().backlog())
    return render_template("backlog.html", items=items, choices=tree.flatten(items))


@bp.post("/backlog")
def add_backlog_item():
    text = required_text("text", "Write what the item is.")
    backend().add_task(None, text, field("parent_id"))
    flash("Added to the backlog.")
    return back(url_for("pages.backlog"))


@bp.post("/backlog/schedule")
def schedule_item():
    """Move a backlog item (with its sub-items) onto a day."""
    date = field("date")
    if not date:
        raise Invalid("Choose the day.", [{"field": "date", "message": "Choose a date."}])
    ensure_day(date)
    backend().move_task(request.form.get("task_id", ""), date)
    flash(f"Moved to {long_date(date)}.")
    return back(url_for("pages.backlog"))


# -- notes ---------------------------------------------------------------------------

@bp.get("/notes")
def notes():
    return render_template("notes.html", notes=backend().notes())


@bp.post("/notes")
def add_note():
    text = required_text("text", "Write the note.", strip=False)
    note = backend().add_note(text, field("date"))
    flash("Note added.")
    return back(url_for("pages.day", date=note["date"]) if note["date"] else url_for("pages.notes"))


@bp.get("/notes/<note_id>")
def note(note_id):
    return render_template("note.html", note=backend().get_note(note_id))


@bp.post("/notes/<note_id>")
def change_note(note_id):
    text = required_text("text", "Write the note (or delete it).", strip=False)
    changed = backend().change_note(note_id, text, field("version"))
    flash("Note saved.")
    return redirect(url_for("pages.day", date=changed["date"]) if changed["date"] else url_for("pages.notes"), 303)


@bp.post("/notes/<note_id>/delete")
def delete_note(note_id):
    backend().delete_note(note_id)
    flash("Note deleted.")
    return back(url_for("pages.notes"))


# -- the whole journal ---------------------------------------------------------------

@bp.get("/import")
def import_page():
    if not flags.current()["markdown_import"]:
        return switched_off("Markdown import is switched off (flag markdown_import).")
    return render_template("import.html", imported=session.pop("imported", None))


@bp.post("/import")
def import_journal():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Invalid("Choose a Markdown file to import.", [{"field": "file", "message": "Choose a file."}])
    mode = request.form.get("mode")
    if mode not in ("merge", "replace"):
        raise Invalid("Choose how to import.", [{"field": "mode", "message": "Choose merge or replace."}])
    result = backend().import_markdown(upload.read(), mode)
    session["imported"] = dict(result, filename=upload.filename)
    return redirect(url_for("pages.import_page"), 303)


@bp.get("/export")
def export_page():
    return render_template("export.html")


@bp.get("/export/worklog.md")
def export_journal():
    start, end = date_range(request.args)
    text = backend().export_markdown(start, end)
    name = "kyb-worklog" + (f"-{start or 'start'}-to-{end or 'end'}" if start or end else "") + ".md"
    return Response(text, content_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/stats")
def stats():
    start, end = date_range(request.args)
    numbers = backend().stats(start, end)
    per_day, per_week = numbers["days"], numbers["weeks"]

    def as_hours(value):
        return f"{value:g} h"

    charts_ = {
        "hours_per_day": charts.bar_chart([(d["date"], d["minutes"] / 60) for d in per_day],
                                          lambda v: hours(round(v * 60)) + " h", as_hours),
        "hours_per_week": charts.bar_chart([(w["week"], w["minutes"] / 60) for w in per_week],
                                           lambda v: hours(round(v * 60)) + " h", as_hours),
        "done_per_day": charts.bar_chart([(d["date"], d["tasks_done"]) for d in per_day], whole=True),
        "done_per_week": charts.bar_chart([(w["week"], w["tasks_done"]) for w in per_week], whole=True),
        "carried_per_day": charts.bar_chart([(d["date"], d["carried_in"]) for d in per_day], whole=True),
    }
    return render_template("stats.html", stats=numbers, charts=charts_, start=start, end=end)
