"""The journal's service layer: days, tasks, backlog, notes, carry-over, import and export.

The journal is stored as ordered blocks, so that exporting gives back exactly what
was imported: day headings (`days`), checklist items (`tasks`) and everything else
(`notes`), each with a `pos` that orders all three in one document. A task belongs
to a day (`day_id`) or to the backlog (`day_id: None`); its subtree is contiguous
in `pos` order. Every document carries `user_id` and every query is scoped by it.

Reads that are cached go through `cache.get_or_load`; every write ends by
invalidating the generations of what it changed.
"""
import datetime as dt
import random
import time

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.errors import DuplicateKeyError

from . import markdown, stats
from .cache import day_gen, get_cache, user_gen
from .db import get_db
from .errors import Problem, not_found

STEP = 1024.0  # gap between positions written in one go; inserts bisect it
MIN_GAP = 1e-3  # below this, a user's positions are renumbered before inserting
BLOCK_COLLECTIONS = ("days", "tasks", "notes")
INDENT = "    "
RETRIES = 50  # attempts of a write without If-Match that keeps losing races
ABANDONED_CLAIM = dt.timedelta(seconds=30)


def now():
    return dt.datetime.now(dt.timezone.utc)


def iso_week(date):
    year, week, _ = dt.date.fromisoformat(date).isocalendar()
    return f"{year}-W{week:02d}"


def minutes_between(start, end):
    if not start or not end:
        return 0
    (h1, m1), (h2, m2) = (map(int, start.split(":")), map(int, end.split(":")))
    return max(0, (h2 * 60 + m2) - (h1 * 60 + m1))


def object_id(value, what):
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        raise not_found(what) from None


def compact(doc):
    """The document without the fields that read back as their default.

    A missing field matches `None` in queries, and render() and the API fill in
    the rest; FerretDB's cost per document grows with every field it stores.
    """
    defaults = {"carry_count": 0}
    if "depth" in doc:
        defaults.update(indent=INDENT * doc["depth"], marker="- ", gap=" ", box="[x]" if doc["done"] else "[ ]")
    return {k: v for k, v in doc.items() if v is not None and defaults.get(k, object()) != v}


def _invalidate(user, dates=()):
    get_cache().invalidate([user_gen(user)] + [day_gen(user, d) for d in dates if d])


def ensure_user(user, newline="\n", final_newline=True):
    """Create the user's journal on first use (the unique index makes races safe)."""
    try:
        get_db().users.update_one(
            {"user_id": user},
            {"$setOnInsert": {"user_id": user, "newline": newline, "final_newline": final_newline,
                              "created_at": now()}},
            upsert=True,
        )
    except DuplicateKeyError:
        pass


# --- positions -------------------------------------------------------------------

def _neighbour(user, pos, after):
    """The pos of the nearest block after (or before) `pos`, in any collection, or None."""
    db = get_db()
    op, order = ("$gt", ASCENDING) if after else ("$lt", DESCENDING)
    found = []
    for name in BLOCK_COLLECTIONS:
        doc = db[name].find_one({"user_id": user, "pos": {op: pos}}, {"pos": 1}, sort=[("pos", order)])
        if doc:
            found.append(doc["pos"])
    if not found:
        return None
    return min(found) if after else max(found)


def _last_pos(user):
    last = _neighbour(user, float("inf"), after=False)
    return 0.0 if last is None else last


def _renumber(user):
    """Spread the user's blocks STEP apart again; returns {old pos: new pos}."""
    db = get_db()
    blocks = []
    for name in BLOCK_COLLECTIONS:
        blocks += [(d["pos"], name, d["_id"]) for d in db[name].find({"user_id": user}, {"pos": 1})]
    blocks.sort()
    mapping, writes = {}, {name: [] for name in BLOCK_COLLECTIONS}
    for i, (pos, name, _id) in enumerate(blocks, start=1):
        mapping[pos] = i * STEP
        writes[name].append(UpdateOne({"_id": _id, "user_id": user}, {"$set": {"pos": i * STEP}}))
    for name, ops in writes.items():
        if ops:
            db[name].bulk_write(ops, ordered=False)
    return mapping


def _slots(user, lo, n):
    """n increasing positions right after `lo` and before the next block."""
    hi = _neighbour(user, lo, after=True)
    if hi is not None and (hi - lo) / (n + 1) < MIN_GAP:
        mapping = _renumber(user)
        lo = mapping.get(lo, lo)
        hi = _neighbour(user, lo, after=True)
    if hi is None:
        return [lo + STEP * (i + 1) for i in range(n)]
    step = (hi - lo) / (n + 1)
    return [lo + step * (i + 1) for i in range(n)]


# --- days --------------------------------------------------------------------------

def _day_doc(user, date):
    day = get_db().days.find_one({"user_id": user, "date": date})
    if day is None:
        raise not_found("day")
    return day


def day_version():
    """A fresh version for a day: its ETag must never repeat, but many writers change a
    day's tasks at once and FerretDB cannot increment atomically, so it is the time."""
    return time.time_ns() // 1000  # microseconds: unique enough, and exact in JavaScript (< 2**53)


def _touch_day(day_id):
    """A new version of the day (its ETag) after a change to its tasks or notes."""
    if day_id is not None:
        get_db().days.update_one({"_id": day_id}, {"$set": {"version": day_version(), "updated_at": now()}})


def _task_json(task):
    return {
        "id": str(task["_id"]),
        "text": task["text"],
        "done": task["done"],
        "date": task.get("date"),
        "parent_id": str(task["parent_id"]) if task.get("parent_id") else None,
        "depth": task["depth"],
        "created_at": task["created_at"].isoformat(),
        "done_at": task["done_at"].isoformat() if task.get("done_at") else None,
        "carried_from": str(task["carried_from"]) if task.get("carried_from") else None,
        "carried_to": str(task["carried_to"]) if task.get("carried_to") else None,
        "carry_count": task.get("carry_count", 0),
        "version": task["version"],
    }


def _note_json(note):
    return {"id": str(note["_id"]), "text": note["text"], "date": note.get("date"), "version": note["version"]}


def _tree(tasks):
    """Nest tasks (sorted by pos) under their parents."""
    nodes, roots = {}, []
    for task in tasks:
        node = _task_json(task)
        node["children"] = []
        nodes[task["_id"]] = node
        parent = nodes.get(task.get("parent_id"))
        (parent["children"] if parent else roots).append(node)
    return roots


def _day_summary(day):
    return {
        "date": day["date"], "week": day["week"], "start": day.get("start"), "end": day.get("end"),
        "minutes": day["minutes"], "heading": day["heading"], "version": day["version"],
    }


def _load_day(user, date):
    db = get_db()
    day = _day_doc(user, date)
    tasks = list(db.tasks.find({"user_id": user, "day_id": day["_id"]}).sort("pos", ASCENDING))
    notes = list(db.notes.find({"user_id": user, "day_id": day["_id"]}).sort("pos", ASCENDING))
    body = _day_summary(day)
    body["tasks"] = _tree(tasks)
    body["notes"] = [_note_json(n) for n in notes if n["text"].strip()]  # blank lines are layout
    body["counts"] = {"total": len(tasks), "done": sum(1 for t in tasks if t["done"])}
    return body


def get_day(user, date):
    """A day with its task tree and notes (cached)."""
    return get_cache().get_or_load(day_gen(user, date), f"kyb:{user}:day:{date}", lambda: _load_day(user, date))


def get_day_json(user, date):
    """The same day as JSON text (bytes), as cached: a hit is sent without decoding it."""
    return get_cache().get_json(day_gen(user, date), f"kyb:{user}:day:{date}", lambda: _load_day(user, date))


def list_days(user, date_from=None, date_to=None, limit=50, after=None):
    """Days in a date range, oldest first, `limit` at a time; `after` is the last date seen."""
    def load():
        query = stats.date_match(user, date_from, date_to)
        if after:
            query.setdefault("date", {})["$gt"] = after
        days = list(get_db().days.find(query).sort("date", ASCENDING).limit(limit + 1))
        counts = _task_counts(user, [d["_id"] for d in days[:limit]])
        items = [dict(_day_summary(d), counts=counts.get(d["_id"], {"total": 0, "done": 0})) for d in days[:limit]]
        return {"items": items, "next": items[-1]["date"] if len(days) > limit else None}

    key = f"kyb:{user}:days:{date_from}:{date_to}:{limit}:{after}"
    return get_cache().get_or_load(user_gen(user), key, load)


def _task_counts(user, day_ids):
    if not day_ids:
        return {}
    match = {"user_id": user, "day_id": {"$in": day_ids}}
    total = stats.sum_by("tasks", match, "$day_id")
    done = stats.sum_by("tasks", dict(match, done=True), "$day_id")
    return {day_id: {"total": n, "done": done.get(day_id, 0)} for day_id, n in total.items()}


def _day_end(user, day):
    """The pos of the last block of a day's section."""
    db = get_db()
    last = day["pos"]
    for name in ("tasks", "notes"):
        doc = db[name].find_one({"user_id": user, "day_id": day["_id"]}, {"pos": 1}, sort=[("pos", DESCENDING)])
        if doc:
            last = max(last, doc["pos"])
    return last


def create_day(user, date, start=None, end=None):
    """A new day, placed among the others by date, with a blank line under its heading."""
    ensure_user(user)
    db = get_db()
    previous = db.days.find_one({"user_id": user, "date": {"$lt": date}}, sort=[("date", DESCENDING)])
    following = db.days.find_one({"user_id": user, "date": {"$gt": date}}, sort=[("date", ASCENDING)])
    if previous:
        lo = _day_end(user, previous)
    elif following:
        lo = _neighbour(user, following["pos"], after=False) or following["pos"] - 2 * STEP
    else:
        lo = _last_pos(user)
    heading_pos, blank_pos = _slots(user, lo, 2)
    stamp = now()
    day = {
        "_id": ObjectId(), "user_id": user, "date": date, "week": iso_week(date), "start": start, "end": end,
        "minutes": minutes_between(start, end), "heading": markdown.day_heading(date, start, end),
        "pos": heading_pos, "version": day_version(), "created_at": stamp, "updated_at": stamp,
    }
    try:
        db.days.insert_one(day)
    except DuplicateKeyError:
        raise Problem(409, "day_exists", f"The day {date} exists already.") from None
    db.notes.insert_one(_new_note(user, "", day, blank_pos))
    _invalidate(user, [date])
    return _day_summary(day)


def change_hours(user, date, start, end, if_match=None):
    day = versioned_write("days", _day_doc(user, date), lambda d: {
        "start": start, "end": end, "minutes": minutes_between(start, end),
        "heading": markdown.with_hours(d["heading"], start, end), "updated_at": now()}, if_match)
    _invalidate(user, [date])
    return _day_summary(day)


def delete_day(user, date):
    """Delete a day with its tasks and notes."""
    db = get_db()
    day = _day_doc(user, date)
    db.tasks.delete_many({"user_id": user, "day_id": day["_id"]})
    db.notes.delete_many({"user_id": user, "day_id": day["_id"]})
    db.days.delete_one({"_id": day["_id"]})
    _invalidate(user, [date])


def _stale():
    return Problem(412, "version_mismatch", "The resource changed since you read it; read it again and retry.")


def _claim(collection, doc):
    """Win the one right to replace this version of `doc`; False if another writer has it.

    FerretDB 1.24 does not make update_one's filter-and-write atomic (twenty writers
    matching the same version all "succeed"), while a duplicate `_id` insert fails
    atomically there as on MongoDB. So a versioned write first inserts the claim
    "collection:id:version", then checks the document is still at that version (only
    the claim's holder can move it on), and drops its claim once the write is done.
    """
    claims = get_db().claims
    key = f"{collection}:{doc['_id']}:{doc['version']}"
    try:
        claims.insert_one({"_id": key, "at": now()})
    except DuplicateKeyError:
        # A claim older than any write takes was left by a process that died mid-write.
        claims.delete_one({"_id": key, "at": {"$lt": now() - ABANDONED_CLAIM}})
        return None
    current = get_db()[collection].find_one({"_id": doc["_id"]}, {"version": 1})
    if current is None or current["version"] != doc["version"]:
        claims.delete_one({"_id": key})
        return None
    return key


def versioned_write(collection, doc, make_update, if_match=None):
    """Apply make_update(doc) -> {field: value} as the next version of `doc`.

    With `if_match`, only if `doc` is still at that version (else 412); without,
    a lost race re-reads the document and tries again. Returns the new document.
    """
    db = get_db()
    for _ in range(RETRIES):
        if if_match is not None and if_match != doc["version"]:
            raise _stale()
        changes = make_update(doc)
        if not changes:
            return doc
        claim = _claim(collection, doc)
        if claim:
            changes["version"] = day_version() if collection == "days" else doc["version"] + 1
            db[collection].update_one({"_id": doc["_id"]}, {"$set": changes})
            db.claims.delete_one({"_id": claim})
            return dict(doc, **changes)
        time.sleep(random.uniform(0.001, 0.01))  # let the winner write before reading again
        doc = db[collection].find_one({"_id": doc["_id"]})
        if doc is None:
            raise not_found(collection[:-1])
    raise Problem(409, "busy", "Too many writers at once; try again.")


# --- tasks -------------------------------------------------------------------------

def _list_tasks(user, day_id):
    """All tasks of a day (or of the backlog when day_id is None), in order."""
    return list(get_db().tasks.find({"user_id": user, "day_id": day_id}).sort("pos", ASCENDING))


def _subtree(tasks, index):
    """The slice of `tasks` (sorted by pos) that is tasks[index] and its descendants."""
    end = index + 1
    while end < len(tasks) and tasks[end]["depth"] > tasks[index]["depth"]:
        end += 1
    return tasks[index:end]


def _insert_after(user, tasks, parent, index, section_start):
    """The pos after which a task goes as child number `index` of `parent` (None: top level)."""
    parent_id = parent["_id"] if parent else None
    siblings = [i for i, t in enumerate(tasks) if t.get("parent_id") == parent_id]
    if index is not None and index < len(siblings):
        before = _neighbour(user, tasks[siblings[index]]["pos"], after=False)
        return before if before is not None else tasks[siblings[index]]["pos"] - STEP
    if siblings:
        return _subtree(tasks, siblings[-1])[-1]["pos"]
    if parent:
        return parent["pos"]
    return section_start()


def _section_start(user, day):
    if day is not None:
        return lambda: _day_end(user, day)
    return lambda: _backlog_anchor(user)


def _backlog_anchor(user):
    """Where a first backlog item goes: under a `### Backlog` heading, made if missing."""
    db = get_db()
    heading = db.notes.find_one({"user_id": user, "day_id": None, "text": {"$regex": r"^#{1,6} +[Bb]acklog *$"}})
    if heading:
        return heading["pos"]
    (pos,) = _slots(user, _last_pos(user), 1)
    db.notes.insert_one(_new_note(user, "### Backlog", None, pos))
    return pos


def _placement(day, parent):
    depth = parent["depth"] + 1 if parent else 0
    indent = parent.get("indent", INDENT * parent["depth"]) + INDENT if parent else ""
    date = day["date"] if day else None
    return {"day_id": day["_id"] if day else None, "date": date, "week": iso_week(date) if date else None,
            "depth": depth, "indent": indent, "parent_id": parent["_id"] if parent else None}


def _find_parent(tasks, parent_id):
    if parent_id is None:
        return None
    parent_oid = object_id(parent_id, "parent task")
    for task in tasks:
        if task["_id"] == parent_oid:
            return task
    raise Problem(400, "invalid", "The parent task is not in that list.",
                  [{"field": "parent_id", "message": "no such task in the target day or backlog"}])


def _check_depth(parent):
    if parent and parent["depth"] + 1 > markdown.MAX_DEPTH:
        raise Problem(400, "invalid", f"Tasks nest at most {markdown.MAX_DEPTH} levels deep.",
                      [{"field": "parent_id", "message": "too deep"}])


def add_task(user, date, text, parent_id=None, index=None):
    """A new open task in a day (date) or in the backlog (date None)."""
    ensure_user(user)
    day = _day_doc(user, date) if date else None
    tasks = _list_tasks(user, day["_id"] if day else None)
    parent = _find_parent(tasks, parent_id)
    _check_depth(parent)
    lo = _insert_after(user, tasks, parent, index, _section_start(user, day))
    (pos,) = _slots(user, lo, 1)
    stamp = now()
    task = {"_id": ObjectId(), "user_id": user, "text": text, "done": False, "pos": pos,
            "created_at": stamp, "done_at": None, "carried_from": None, "carried_to": None, "carry_count": 0,
            "version": 1, **_placement(day, parent)}
    get_db().tasks.insert_one(compact(task))
    _touch_day(task.get("day_id"))
    _invalidate(user, [date])
    return _task_json(task)


def _task_doc(user, task_id):
    task = get_db().tasks.find_one({"_id": object_id(task_id, "task"), "user_id": user})
    if task is None:
        raise not_found("task")
    return task


def get_task(user, task_id):
    return _task_json(_task_doc(user, task_id))


def update_task(user, task_id, changes, if_match=None):
    """Change a task's text and/or done flag, optionally only if it is at version if_match."""
    def update(task):
        fields = {}
        if "text" in changes:
            fields["text"] = changes["text"]
        if "done" in changes and changes["done"] != task["done"]:
            fields.update(done=changes["done"], done_at=now() if changes["done"] else None)
        return fields

    before = _task_doc(user, task_id)
    task = versioned_write("tasks", before, update, if_match)
    if task is not before:
        _touch_day(task.get("day_id"))
        _invalidate(user, [task.get("date")])
    return _task_json(task)


def delete_task(user, task_id):
    """Delete a task with all its sub-tasks."""
    task = _task_doc(user, task_id)
    tasks = _list_tasks(user, task.get("day_id"))
    index = next(i for i, t in enumerate(tasks) if t["_id"] == task["_id"])
    ids = [t["_id"] for t in _subtree(tasks, index)]
    get_db().tasks.delete_many({"user_id": user, "_id": {"$in": ids}})
    _touch_day(task.get("day_id"))
    _invalidate(user, [task.get("date")])
    return len(ids)


def move_task(user, task_id, date, parent_id=None, index=None, if_match=None):
    """Move a task with its subtree: to another day (made if missing) or the backlog
    (date None), under another parent or to the top level, at child position `index`
    (None: last); only if the task is at version `if_match`, when given."""
    task = _task_doc(user, task_id)
    if if_match is not None and if_match != task["version"]:
        raise _stale()
    if date and get_db().days.find_one({"user_id": user, "date": date}) is None:
        create_day(user, date)
    source = _list_tasks(user, task.get("day_id"))
    start = next(i for i, t in enumerate(source) if t["_id"] == task["_id"])
    moving = _subtree(source, start)
    moving_ids = {t["_id"] for t in moving}
    day = _day_doc(user, date) if date else None
    target = [t for t in _list_tasks(user, day["_id"] if day else None) if t["_id"] not in moving_ids]
    if parent_id is not None and object_id(parent_id, "parent task") in moving_ids:
        raise Problem(400, "invalid", "A task cannot be moved under itself.",
                      [{"field": "parent_id", "message": "is the task or one of its sub-tasks"}])
    parent = _find_parent(target, parent_id)
    depth_shift = (parent["depth"] + 1 if parent else 0) - task["depth"]
    if parent and max(t["depth"] for t in moving) + depth_shift > markdown.MAX_DEPTH:
        _check_depth({"depth": markdown.MAX_DEPTH})
    lo = _insert_after(user, target, parent, index, _section_start(user, day))
    # The moving blocks must not count as neighbours of their own new place.
    get_db().tasks.update_many({"_id": {"$in": list(moving_ids)}}, {"$set": {"pos": -1.0}})
    positions = _slots(user, lo, len(moving))
    placement = _placement(day, parent)
    old_indent = task.get("indent", INDENT * task["depth"])
    writes = []
    for t, pos in zip(moving, positions):
        own = t.get("indent", INDENT * t["depth"])
        rest = own[len(old_indent):] if own.startswith(old_indent) else INDENT * (t["depth"] - task["depth"])
        fields = {"pos": pos, "day_id": placement["day_id"], "date": placement["date"], "week": placement["week"],
                  "depth": t["depth"] + depth_shift, "indent": placement["indent"] + rest}
        if t["_id"] == task["_id"]:
            fields["parent_id"] = placement["parent_id"]
        writes.append(UpdateOne({"_id": t["_id"]}, {"$set": dict(fields, version=t["version"] + 1)}))
    get_db().tasks.bulk_write(writes, ordered=True)
    _touch_day(task.get("day_id"))
    _touch_day(placement["day_id"])
    _invalidate(user, [task.get("date"), date])
    return get_task(user, task_id)


def carry_over(user, date, to_date):
    """Copy the day's unfinished tasks to `to_date` (made if missing), linked to their originals.

    The originals stay where they are, open, as in the user's log; they remember
    the copy (`carried_to`) so a second carry-over does not copy them again.
    """
    if to_date == date:
        raise Problem(400, "invalid", "Carry over to another day.", [{"field": "to", "message": "same day"}])
    source_day = _day_doc(user, date)
    if get_db().days.find_one({"user_id": user, "date": to_date}) is None:
        create_day(user, to_date)
    target_day = _day_doc(user, to_date)
    open_tasks = [t for t in _list_tasks(user, source_day["_id"]) if not t["done"] and not t.get("carried_to")]
    if not open_tasks:
        return []
    target = _list_tasks(user, target_day["_id"])
    lo = _insert_after(user, target, None, None, _section_start(user, target_day))
    positions = _slots(user, lo, len(open_tasks))
    copies, by_original, stamp = [], {}, now()
    for original, pos in zip(open_tasks, positions):
        parent = by_original.get(original.get("parent_id"))
        copy = {"_id": ObjectId(), "user_id": user, "text": original["text"], "done": False,
                "pos": pos, "created_at": stamp, "done_at": None, "carried_from": original["_id"],
                "carried_to": None, "carry_count": original.get("carry_count", 0) + 1, "version": 1,
                **_placement(target_day, parent)}
        for key in ("marker", "box", "gap"):
            if key in original:
                copy[key] = original[key]
        by_original[original["_id"]] = copy
        copies.append(copy)
    db = get_db()
    db.tasks.insert_many([compact(c) for c in copies], ordered=True)
    for copy, original in zip(copies, open_tasks):
        versioned_write("tasks", original, lambda t, copy=copy: {"carried_to": copy["_id"]})
    _touch_day(source_day["_id"])
    _touch_day(target_day["_id"])
    _invalidate(user, [date, to_date])
    return [_task_json(c) for c in copies]


def list_backlog(user):
    """The backlog as a tree of open and done items."""
    return get_cache().get_or_load(user_gen(user), f"kyb:{user}:backlog", lambda: _tree(_list_tasks(user, None)))


# --- notes -------------------------------------------------------------------------

def _new_note(user, text, day, pos):
    stamp = now()
    return compact({"_id": ObjectId(), "user_id": user, "text": text, "day_id": day["_id"] if day else None,
                    "date": day["date"] if day else None, "pos": pos, "version": 1, "created_at": stamp,
                    "updated_at": stamp})


def list_notes(user, date=None):
    def load():
        query = {"user_id": user, "text": {"$regex": r"\S"}}
        if date:
            query["date"] = date
        return [_note_json(n) for n in get_db().notes.find(query).sort("pos", ASCENDING)]

    return get_cache().get_or_load(user_gen(user), f"kyb:{user}:notes:{date}", load)


def add_note(user, text, date=None):
    """A note at the end of a day (date) or of the journal."""
    ensure_user(user)
    day = _day_doc(user, date) if date else None
    lo = _day_end(user, day) if day else _last_pos(user)
    (pos,) = _slots(user, lo, 1)
    note = _new_note(user, text, day, pos)
    get_db().notes.insert_one(note)
    _touch_day(note.get("day_id"))
    _invalidate(user, [date])
    return _note_json(note)


def _note_doc(user, note_id):
    note = get_db().notes.find_one({"_id": object_id(note_id, "note"), "user_id": user})
    if note is None:
        raise not_found("note")
    return note


def get_note(user, note_id):
    return _note_json(_note_doc(user, note_id))


def update_note(user, note_id, text, if_match=None):
    note = versioned_write("notes", _note_doc(user, note_id), lambda n: {"text": text, "updated_at": now()},
                           if_match)
    _touch_day(note.get("day_id"))
    _invalidate(user, [note.get("date")])
    return _note_json(note)


def delete_note(user, note_id):
    note = _note_doc(user, note_id)
    get_db().notes.delete_one({"_id": note["_id"]})
    _touch_day(note.get("day_id"))
    _invalidate(user, [note.get("date")])


# --- import and export -------------------------------------------------------------

def _documents(user, parsed, base, existing_days):
    """MongoDB documents for parsed blocks, positioned after `base`."""
    stamp = now()
    ids = [ObjectId() for _ in parsed["blocks"]]
    days, tasks, notes = [], [], []
    day_of = {}  # block index of a day heading -> (day id, date)
    for i, block in enumerate(parsed["blocks"]):
        pos = base + (i + 1) * STEP
        kind = block["kind"]
        if kind == "day" and block["date"] in existing_days:
            day_of[i] = existing_days[block["date"]]
            notes.append({"_id": ids[i], "user_id": user, "text": block["heading"], "day_id": day_of[i][0],
                          "date": block["date"], "pos": pos, "version": 1, "created_at": stamp,
                          "updated_at": stamp})
        elif kind == "day":
            day_of[i] = (ids[i], block["date"])
            days.append({"_id": ids[i], "user_id": user, "date": block["date"], "week": iso_week(block["date"]),
                         "start": block["start"], "end": block["end"],
                         "minutes": minutes_between(block["start"], block["end"]), "heading": block["heading"],
                         "pos": pos, "version": day_version(), "created_at": stamp, "updated_at": stamp})
        else:
            day_id, date = day_of.get(block["day"], (None, None))
            doc = {"_id": ids[i], "user_id": user, "text": block["text"], "day_id": day_id, "date": date,
                   "pos": pos, "version": 1, "created_at": stamp}
            if kind == "note":
                notes.append(dict(doc, updated_at=stamp))
            else:
                doc.update(
                    done=block["done"], done_at=stamp if block["done"] else None,
                    week=iso_week(date) if date else None, depth=block["depth"],
                    parent_id=ids[block["parent"]] if block["parent"] is not None else None,
                    indent=block["indent"], marker=block["marker"], box=block["box"], gap=block["gap"],
                    carried_from=None, carried_to=None, carry_count=0,
                )
                tasks.append(doc)
    _link_carried(tasks)
    return days, tasks, notes


def _link_carried(tasks):
    """Link a task to an open task of the same text on an earlier day: the log's carry-overs."""
    waiting = {}  # text -> open tasks not yet carried, oldest first
    for task in sorted((t for t in tasks if t["date"]), key=lambda t: (t["date"], t["pos"])):
        key = " ".join(task["text"].split())
        candidates = waiting.get(key, [])
        earlier = next((c for c in candidates if c["date"] < task["date"]), None)
        if earlier:
            candidates.remove(earlier)
            earlier["carried_to"] = task["_id"]
            task["carried_from"] = earlier["_id"]
            task["carry_count"] = earlier["carry_count"] + 1
        if not task["done"]:
            waiting.setdefault(key, []).append(task)


def import_markdown(user, text, mode):
    """Take in a Markdown journal: `replace` the user's journal, or `merge` it after what is there."""
    try:
        parsed = markdown.parse(text)
    except markdown.MarkdownError as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise Problem(400, "invalid_markdown", f"{exc}{where}") from None
    db = get_db()
    ensure_user(user, parsed["newline"], parsed["final_newline"])
    replaced = []
    if mode == "replace":
        replaced = db.days.distinct("date", {"user_id": user})
        for name in BLOCK_COLLECTIONS:
            db[name].delete_many({"user_id": user})
        db.users.update_one({"user_id": user}, {"$set": {"newline": parsed["newline"],
                                                         "final_newline": parsed["final_newline"]}})
        existing, base = {}, 0.0
    else:
        existing = {d["date"]: (d["_id"], d["date"]) for d in db.days.find({"user_id": user}, {"date": 1})}
        base = _last_pos(user)
    days, tasks, notes = _documents(user, parsed, base, existing)
    for name, docs in (("days", days), ("tasks", tasks), ("notes", notes)):
        if docs:
            db[name].insert_many([compact(d) for d in docs], ordered=False)
    changed = {t["date"] for t in tasks + notes if t["date"]} | {d["date"] for d in days} | set(replaced)
    get_cache().invalidate([user_gen(user)] + [day_gen(user, d) for d in changed])
    return {
        "mode": mode, "days": len(days), "tasks": len(tasks), "done": sum(t["done"] for t in tasks),
        "backlog": sum(1 for t in tasks if t["day_id"] is None),
        "carried": sum(1 for t in tasks if t["carried_from"]), "notes": len(notes),
    }


def _blocks(user, date_from, date_to):
    db = get_db()
    query = {"user_id": user}
    if date_from or date_to:
        day_ids = [d["_id"] for d in db.days.find(stats.date_match(user, date_from, date_to), {"_id": 1})]
        day_query = dict(query, _id={"$in": day_ids})
        query = dict(query, day_id={"$in": day_ids})
    else:
        day_query = query
    blocks = [dict(d, kind="day") for d in db.days.find(day_query)]
    blocks += [dict(t, kind="task") for t in db.tasks.find(query)]
    blocks += [dict(n, kind="note") for n in db.notes.find(query)]
    blocks.sort(key=lambda b: b["pos"])
    return blocks


def export_markdown(user, date_from=None, date_to=None):
    """The journal (or the days of a date range) as the user's Markdown."""
    def load():
        settings = get_db().users.find_one({"user_id": user}) or {}
        whole = not (date_from or date_to)
        return markdown.render(
            _blocks(user, date_from, date_to),
            newline=settings.get("newline", "\n"),
            final_newline=settings.get("final_newline", True) if whole else True,
        )

    return get_cache().get_or_load(user_gen(user), f"kyb:{user}:export:{date_from}:{date_to}", load)
