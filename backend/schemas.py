"""Request bodies and query strings, validated with pydantic.

Strict models with no unknown fields: a wrong type or a stray key is a 400 that
names the field, never a silent coercion.
"""
import datetime as dt
import re
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from . import markdown

TIME = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")


def valid_date(value):
    """An ISO date (YYYY-MM-DD) that exists on the calendar."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a real calendar date") from None
    return value


def valid_time(value):
    if not TIME.fullmatch(value):
        raise ValueError("must be a time as HH:MM (00:00 to 23:59)")
    hours, minutes = value.split(":")
    return f"{int(hours):02d}:{minutes}"


def valid_task_text(value):
    """Text that stays exactly one task when the journal is written out and read back."""
    if not value.strip():
        raise ValueError("must not be blank")
    try:
        blocks = markdown.parse("- [ ] " + value)["blocks"]
    except markdown.MarkdownError as exc:
        raise ValueError(str(exc)) from None
    if len(blocks) != 1 or blocks[0]["kind"] != "task" or blocks[0]["text"] != value:
        raise ValueError("must be one task: no blank lines, headings or list items inside")
    return value


def valid_note_text(value):
    """Text that stays a note when read back: no checklist items, no day headings."""
    if not value.strip():
        raise ValueError("must not be blank")
    try:
        blocks = markdown.parse(value)["blocks"]
    except markdown.MarkdownError as exc:
        raise ValueError(str(exc)) from None
    if any(b["kind"] != "note" for b in blocks):
        raise ValueError("must not contain checklist items or day headings (add those as tasks and days)")
    return value


DATE_SCHEMA = {"type": "string", "format": "date", "examples": ["2020-03-19"]}
Date = Annotated[str, AfterValidator(valid_date), WithJsonSchema(DATE_SCHEMA)]
Time = Annotated[str, AfterValidator(valid_time),
                 WithJsonSchema({"type": "string", "pattern": r"^([01]?\d|2[0-3]):[0-5]\d$", "examples": ["08:30"]})]
TaskText = Annotated[str, Field(min_length=1, max_length=4000, examples=["Install Minikube (single-node Kubernetes)"]),
                     AfterValidator(valid_task_text)]
NoteText = Annotated[str, Field(min_length=1, max_length=100_000,
                                examples=["#### Minikube\n`minikube start` : Start cluster  "]),
                     AfterValidator(valid_note_text)]
# JSON Schema counts 3.0 as an integer, so the API does too.
Index = Annotated[int, BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v),
                  Field(ge=0, description="position among the siblings; left out: last")]
ObjectIdText = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$", examples=["6b06f6dca8c56bca20c5f048"])]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HoursIn(Body):
    """Hours of a day; `end` needs a `start` and must come after it."""

    start: Optional[Time] = None
    end: Optional[Time] = None

    @field_validator("end")
    @classmethod
    def _after_start(cls, end, info):
        start = info.data.get("start")
        if end is not None and start is None:
            raise ValueError("needs a start")
        if end is not None and end <= start:
            raise ValueError("must be after start")
        return end


class HoursPatch(Body):
    """Hours to change; fields left out keep their value."""

    start: Optional[Time] = None
    end: Optional[Time] = None


class DayIn(HoursIn):
    date: Date


class TaskIn(Body):
    text: TaskText
    parent_id: Optional[ObjectIdText] = None
    index: Optional[Index] = None


class TaskPatch(Body):
    """Fields left out keep their value; neither may be null."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    text: TaskText = None
    done: bool = None

    @model_validator(mode="after")
    def _something(self):
        if not self.model_fields_set:
            raise ValueError("give text and/or done")
        return self


class TaskMove(Body):
    date: Optional[Date] = Field(description="the day to move to; null moves the task to the backlog")
    parent_id: Optional[ObjectIdText] = None
    index: Optional[Index] = None


class CarryIn(Body):
    to: Date


class NoteIn(Body):
    text: NoteText
    date: Optional[Date] = None


class NotePatch(Body):
    text: NoteText


class RangeQuery(Query):
    """Days from `from` to `to`, both included (a `to` before `from` selects nothing)."""

    date_from: Optional[Date] = Field(default=None, alias="from")
    date_to: Optional[Date] = Field(default=None, alias="to")


class DaysQuery(RangeQuery):
    limit: int = Field(default=50, ge=1, le=500)
    after: Optional[Date] = None


class NotesQuery(Query):
    date: Optional[Date] = None


class ImportQuery(Query):
    mode: Literal["merge", "replace"]


# --- responses (they document what the views return; schemathesis checks they agree) ---

class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Counts(Out):
    total: int
    done: int


class DaySummary(Out):
    date: str = Field(json_schema_extra={"format": "date"}, examples=["2020-03-19"])
    week: str = Field(examples=["2020-W12"])
    start: Optional[str] = Field(examples=["08:30"])
    end: Optional[str] = Field(examples=["16:30"])
    minutes: int = Field(examples=[480])
    heading: str = Field(examples=["## Dag 19.3.20 8:30 - 16:30"])
    version: int


class DayListItem(DaySummary):
    counts: Counts


class DayList(Out):
    items: list[DayListItem]
    next: Optional[str] = Field(description="pass as `after` for the next page; null on the last page")


class Task(Out):
    id: str
    text: str = Field(examples=["Install Minikube (single-node Kubernetes)"])
    done: bool
    date: Optional[str] = Field(description="the day; null for a backlog item")
    parent_id: Optional[str]
    depth: int
    created_at: str
    done_at: Optional[str]
    carried_from: Optional[str] = Field(description="the task this one was carried over from")
    carried_to: Optional[str] = Field(description="the copy this task was carried over to")
    carry_count: int
    version: int


class TaskNode(Task):
    children: list["TaskNode"]


class Note(Out):
    id: str
    text: str
    date: Optional[str]
    version: int


class Day(DaySummary):
    tasks: list[TaskNode]
    notes: list[Note]
    counts: Counts


class CarryResult(Out):
    from_: str = Field(alias="from")
    to: str
    carried: list[Task]


class TaskTree(Out):
    items: list[TaskNode]


class NoteList(Out):
    items: list[Note]


class ImportResult(Out):
    mode: Literal["merge", "replace"]
    days: int
    tasks: int
    done: int
    backlog: int
    carried: int
    notes: int


class DayStats(Out):
    date: str
    week: str
    minutes: int
    tasks_done: int
    carried_in: int


class WeekStats(Out):
    week: str
    minutes: int
    days: int
    tasks_done: int


class OpenDone(Out):
    open: int
    done: int
    total: int


class CarriedTask(Out):
    id: str
    text: str
    carry_count: int
    date: Optional[str]
    done: bool


class Carried(Out):
    total: int
    most_carried: list[CarriedTask]


class Stats(Out):
    from_: Optional[str] = Field(alias="from")
    to: Optional[str]
    days: list[DayStats]
    weeks: list[WeekStats]
    tasks: OpenDone
    carried: Carried


class FlagState(Out):
    version: Optional[str] = Field(description="hash of the flag file in force")
    error: Optional[str] = Field(description="why the last update of the file was rejected")


class Flags(Out):
    flags: dict[str, bool | str]
    version: Optional[str] = Field(default=None, description="admins only: hash of the flag file in force")
    error: Optional[str] = Field(default=None, description="admins only: why the last update was rejected")


class Health(Out):
    status: Literal["ok"]


class Ready(Out):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    cache: Literal["ok", "degraded", "disabled"]
    flags: FlagState


class FieldError(Out):
    field: str
    message: str


class Problem(Out):
    type: str
    title: str
    status: int
    code: str = Field(examples=["invalid"])
    detail: str
    errors: Optional[list[FieldError]] = None
