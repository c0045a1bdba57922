"""The JSON API, /api/v1. Views parse the request, call the journal and shape the response."""
import logging
import re

from flask import Blueprint, Response, current_app, jsonify, request

from . import journal, metrics, schemas, stats
from .flags import get_flags
from .errors import Problem
from .identity import current_email, current_roles, current_user
from .openapi import doc, spec

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

JSON_LIMIT = 256 * 1024
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
FEATURES = {"markdown_import": "Markdown import", "stats": "Statistics", "carry_over": "Carry-over"}


@bp.before_request
def refuse_writes_when_read_only():
    """The `read_only` kill switch: every write answers 503, reads go on."""
    if request.method in WRITES and flag("read_only"):
        log.debug("flag read_only refused %s %s", request.method, request.url_rule)
        raise Problem(503, "read_only", "The journal is read-only for maintenance right now; reading still works.")


def flag(name):
    """A flag's value for the caller: targeting sees their id, email and roles."""
    return get_flags().value(name, current_user(), current_email(), current_roles())


def require(feature):
    """Refuse a request for a feature whose flag is off for this user."""
    if not flag(feature):
        log.debug("flag %s is off: refused %s", feature, request.url_rule)
        raise Problem(403, "feature_off", f"{FEATURES[feature]} is switched off (flag {feature}).")


def body(model):
    """The request's JSON body validated by `model` (a 400 names any bad field)."""
    if request.mimetype != "application/json":
        raise Problem(415, "unsupported_media_type", "Send the body as application/json.")
    if (request.content_length or 0) > JSON_LIMIT:
        raise Problem(413, "too_large", f"JSON bodies are limited to {JSON_LIMIT // 1024} KiB.")
    return model.model_validate_json(request.get_data(cache=False) or b"", strict=True)


def query(model):
    return model.model_validate(request.args.to_dict(flat=True))


def path_date(value):
    try:
        return schemas.valid_date(value)
    except ValueError as exc:
        raise Problem(400, "invalid", "The date in the path is not valid.",
                      [{"field": "date", "message": str(exc)}]) from None


def if_match():
    """The version named by If-Match ("3" or W/"3"), None when absent or "*"."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/")
    if not (len(value) > 2 and value[0] == value[-1] == '"' and value[1:-1].isdigit()):
        raise Problem(400, "invalid", 'If-Match must be an ETag this API gave out, like "3".',
                      [{"field": "If-Match", "message": "not an entity tag"}])
    return int(value[1:-1])


# The first `"version":` after `{` or `,` in a day's JSON text: its own (it precedes "tasks";
# inside a JSON string every `"` is escaped, so no text can fake it).
TOP_VERSION = re.compile(rb'[{,]"version":(\d+)')


def with_etag(payload, status=200):
    """A JSON response tagged with the resource's version; 304 if the client has it.
    `payload` is a dict, or JSON text (bytes) of one, sent as it is."""
    if isinstance(payload, bytes):
        version = TOP_VERSION.search(payload).group(1).decode()
    else:
        version = str(payload["version"])
    if status == 200 and "If-None-Match" in request.headers and request.if_none_match.contains_weak(version):
        response = Response(status=304)
    elif isinstance(payload, bytes):
        response = Response(payload, status=status, mimetype="application/json")
    else:
        response = jsonify(payload)
        response.status_code = status
    response.headers["ETag"] = f'"{version}"'
    return response


@bp.get("/days")
@doc("List days in a date range, oldest first", "days", query=schemas.DaysQuery, response=schemas.DayList)
def list_days():
    q = query(schemas.DaysQuery)
    return jsonify(journal.list_days(current_user(), q.date_from, q.date_to, q.limit, q.after))


@bp.post("/days")
@doc("Create a day", "days", body=schemas.DayIn, response=schemas.DaySummary, status=201, errors=[409],
     links=("date", "date", ["get_day", "change_hours", "delete_day", "add_task", "carry_over"]))
def create_day():
    data = body(schemas.DayIn)
    day = journal.create_day(current_user(), data.date, data.start, data.end)
    response = jsonify(day)
    response.status_code = 201
    response.headers["Location"] = f"{bp.url_prefix}/days/{day['date']}"
    return response


@bp.get("/days/<date>")
@doc("A day with its task tree and notes", "days", response=schemas.Day, etag=True)
def get_day(date):
    return with_etag(journal.get_day_json(current_user(), path_date(date)))


@bp.patch("/days/<date>")
@doc("Change a day's hours", "days", body=schemas.HoursPatch, response=schemas.DaySummary, if_match=True, etag=True)
def change_hours(date):
    user, date = current_user(), path_date(date)
    data = body(schemas.HoursPatch)
    day = journal.get_day(user, date)
    checked = schemas.HoursIn.model_validate(
        {"start": day["start"], "end": day["end"], **data.model_dump(include=data.model_fields_set)})
    return with_etag(journal.change_hours(user, date, checked.start, checked.end, if_match()))


@bp.delete("/days/<date>")
@doc("Delete a day with its tasks and notes", "days", status=204)
def delete_day(date):
    journal.delete_day(current_user(), path_date(date))
    return "", 204


@bp.post("/days/<date>/tasks")
@doc("Add a task to a day", "tasks", body=schemas.TaskIn, response=schemas.Task, status=201, etag=True,
     links=("task_id", "id", ["get_task", "update_task", "move_task", "delete_task"]))
def add_task(date):
    user, date = current_user(), path_date(date)
    data = body(schemas.TaskIn)
    return with_etag(journal.add_task(user, date, data.text, data.parent_id, data.index), 201)


@bp.post("/days/<date>/carry-over")
@doc("Carry the unfinished tasks over to another day", "carry-over", body=schemas.CarryIn, response=schemas.CarryResult, errors=[403], description="Copies every open task not carried before to `to` (created if missing), linked to its original, and answers the copies (none when there was nothing left to carry).")
def carry_over(date):
    require("carry_over")
    user, date = current_user(), path_date(date)
    data = body(schemas.CarryIn)
    carried = journal.carry_over(user, date, data.to)
    return jsonify({"from": date, "to": data.to, "carried": carried})


@bp.get("/tasks/<task_id>")
@doc("A task", "tasks", response=schemas.Task, etag=True)
def get_task(task_id):
    return with_etag(journal.get_task(current_user(), task_id))


@bp.patch("/tasks/<task_id>")
@doc("Edit or tick a task", "tasks", body=schemas.TaskPatch, response=schemas.Task, if_match=True, etag=True)
def update_task(task_id):
    data = body(schemas.TaskPatch)
    changes = data.model_dump(include=data.model_fields_set)
    return with_etag(journal.update_task(current_user(), task_id, changes, if_match()))


@bp.delete("/tasks/<task_id>")
@doc("Delete a task with its sub-tasks", "tasks", status=204)
def delete_task(task_id):
    journal.delete_task(current_user(), task_id)
    return "", 204


@bp.post("/tasks/<task_id>/move")
@doc("Move a task with its sub-tasks", "tasks", body=schemas.TaskMove, response=schemas.Task, etag=True, if_match=True, description="Reorder (`index`), nest (`parent_id`), unnest (`parent_id: null`), move to another day (`date`, made if missing) or to the backlog (`date: null`).")
def move_task(task_id):
    data = body(schemas.TaskMove)
    return with_etag(journal.move_task(current_user(), task_id, data.date, data.parent_id, data.index, if_match()))


@bp.get("/backlog")
@doc("The backlog", "backlog", response=schemas.TaskTree)
def list_backlog():
    return jsonify({"items": journal.list_backlog(current_user())})


@bp.post("/backlog")
@doc("Add a backlog item", "backlog", body=schemas.TaskIn, response=schemas.Task, status=201, etag=True,
     links=("task_id", "id", ["get_task", "update_task", "move_task", "delete_task"]))
def add_backlog_item():
    data = body(schemas.TaskIn)
    return with_etag(journal.add_task(current_user(), None, data.text, data.parent_id, data.index), 201)


@bp.get("/notes")
@doc("Notes, of the journal or of one day", "notes", query=schemas.NotesQuery, response=schemas.NoteList)
def list_notes():
    q = query(schemas.NotesQuery)
    return jsonify({"items": journal.list_notes(current_user(), q.date)})


@bp.post("/notes")
@doc("Add a note", "notes", body=schemas.NoteIn, response=schemas.Note, status=201, etag=True, errors=[404],
     links=("note_id", "id", ["get_note", "update_note", "delete_note"]))
def add_note():
    data = body(schemas.NoteIn)
    return with_etag(journal.add_note(current_user(), data.text, data.date), 201)


@bp.get("/notes/<note_id>")
@doc("A note", "notes", response=schemas.Note, etag=True)
def get_note(note_id):
    return with_etag(journal.get_note(current_user(), note_id))


@bp.patch("/notes/<note_id>")
@doc("Edit a note", "notes", body=schemas.NotePatch, response=schemas.Note, if_match=True, etag=True)
def update_note(note_id):
    data = body(schemas.NotePatch)
    return with_etag(journal.update_note(current_user(), note_id, data.text, if_match()))


@bp.delete("/notes/<note_id>")
@doc("Delete a note", "notes", status=204)
def delete_note(note_id):
    journal.delete_note(current_user(), note_id)
    return "", 204


@bp.post("/import")
@doc("Import a Markdown journal", "import-export", query=schemas.ImportQuery, markdown_in=True, response=schemas.ImportResult, status=201, errors=[403], description="`replace` drops the journal first; `merge` appends the file after it (a day that exists takes the file's tasks for it).")
def import_markdown():
    require("markdown_import")
    q = query(schemas.ImportQuery)
    if request.mimetype not in ("text/markdown", "text/plain"):
        raise Problem(415, "unsupported_media_type", "Send the journal as text/markdown.")
    limit = current_app.config["MAX_IMPORT_BYTES"]
    if (request.content_length or 0) > limit:
        raise Problem(413, "too_large", f"Imports are limited to {limit // (1024 * 1024)} MiB.")
    data = request.get_data(cache=False)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, "invalid_encoding", f"The file is not UTF-8 (byte {exc.start}).") from None
    result = journal.import_markdown(current_user(), text, q.mode)
    metrics.observe_import(len(data), result["tasks"])
    return jsonify(result), 201


@bp.get("/export")
@doc("Export the journal as Markdown", "import-export", query=schemas.RangeQuery, markdown_out=True)
def export_markdown():
    q = query(schemas.RangeQuery)
    text = journal.export_markdown(current_user(), q.date_from, q.date_to)
    return Response(text, mimetype="text/markdown", content_type="text/markdown; charset=utf-8")


@bp.get("/stats")
@doc("Hours, done tasks and carry-overs per day and ISO week", "stats", query=schemas.RangeQuery, response=schemas.Stats, errors=[403])
def journal_stats():
    require("stats")
    q = query(schemas.RangeQuery)
    return jsonify(stats.journal_stats(current_user(), q.date_from, q.date_to))


@bp.get("/flags")
@doc("The feature flags as they apply to the caller", "flags", response=schemas.Flags)
def flags():
    """The flags as they apply to the caller; for admins also the state of the flag file."""
    state = get_flags()
    body = {"flags": state.all_for(current_user(), current_email(), current_roles())}
    if "admin" in current_roles():
        body.update(state.status())
    return jsonify(body)


@bp.get("/openapi.json")
@doc("This OpenAPI document", "meta", response=None)
def openapi():
    """This API's OpenAPI 3.1 document."""
    return jsonify(spec(current_app))
