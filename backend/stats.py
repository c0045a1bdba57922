"""Statistics over a journal, computed by MongoDB.

The pipelines use only $match, $group with $sum, $sort, $limit and $project, the
subset FerretDB supports, so the same code runs on FerretDB and MongoDB 7; and
one accumulator per $group, because FerretDB 1.24 (SQLite) answers 0 for every
accumulator after the first. What
those stages cannot compute is stored at write time: a day's `minutes` and ISO
`week`, a task's `date`, `week` and `carry_count`.
"""
from .cache import get_cache, user_gen
from .db import get_db


def date_match(user, date_from, date_to):
    """The query for one user's documents whose `date` lies in [date_from, date_to]."""
    query = {"user_id": user}
    bounds = {}
    if date_from:
        bounds["$gte"] = date_from
    if date_to:
        bounds["$lte"] = date_to
    if bounds:
        query["date"] = bounds
    return query


def sum_by(collection, match, key, value=1):
    """{group key: sum of value} over the matching documents (one accumulator, see above)."""
    rows = get_db()[collection].aggregate([
        {"$match": match},
        {"$group": {"_id": key, "n": {"$sum": value}}},
    ])
    return {r["_id"]: r["n"] for r in rows}


def _load(user, date_from, date_to):
    db = get_db()
    dated = date_match(user, date_from, date_to)
    in_days = dict(dated, date=dict(dated.get("date", {}), **{"$ne": None}))
    done_by_day = sum_by("tasks", dict(in_days, done=True), "$date")
    carried_by_day = sum_by("tasks", dict(in_days, carried_from={"$ne": None}), "$date")
    days = [
        {"date": d["date"], "week": d["week"], "minutes": d["minutes"], "tasks_done": done_by_day.get(d["date"], 0),
         "carried_in": carried_by_day.get(d["date"], 0)}
        for d in db.days.find(dated, {"date": 1, "week": 1, "minutes": 1}).sort("date", 1)
    ]
    minutes_by_week = sum_by("days", dated, "$week", "$minutes")
    days_by_week = sum_by("days", dated, "$week")
    done_by_week = sum_by("tasks", dict(in_days, done=True), "$week")
    weeks = [{"week": w, "minutes": minutes_by_week[w], "days": days_by_week.get(w, 0),
              "tasks_done": done_by_week.get(w, 0)} for w in sorted(minutes_by_week)]
    # The whole journal counts backlog items too; a date range only counts days.
    scope = in_days if (date_from or date_to) else {"user_id": user}
    by_state = sum_by("tasks", scope, "$done")
    most = db.tasks.aggregate([
        {"$match": dict(scope, carry_count={"$gt": 0}, carried_to=None)},
        {"$sort": {"carry_count": -1, "date": 1}},
        {"$limit": 10},
        {"$project": {"_id": 1, "text": 1, "carry_count": 1, "date": 1, "done": 1}},
    ])
    return {
        "from": date_from, "to": date_to,
        "days": days,
        "weeks": weeks,
        "tasks": {"open": by_state.get(False, 0), "done": by_state.get(True, 0),
                  "total": by_state.get(False, 0) + by_state.get(True, 0)},
        "carried": {
            "total": sum(carried_by_day.values()),
            "most_carried": [{"id": str(t["_id"]), "text": t["text"], "carry_count": t["carry_count"],
                              "date": t["date"], "done": t["done"]} for t in most],
        },
    }


def journal_stats(user, date_from=None, date_to=None):
    """Hours, finished tasks and carry-overs per day and ISO week (cached)."""
    return get_cache().get_or_load(user_gen(user), f"kyb:{user}:stats:{date_from}:{date_to}",
                                   lambda: _load(user, date_from, date_to))
