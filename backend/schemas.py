"""Request bodies and query strings, validated with pydantic.

Strict models with no unknown fields: a wrong type or a stray key is a 400 that
names the field, never a silent coercion.
"""
import datetime as dt
import re
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

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


Date = Annotated[str, AfterValidator(valid_date)]
Time = Annotated[str, AfterValidator(valid_time)]
TaskText = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(valid_task_text)]
NoteText = Annotated[str, Field(min_length=1, max_length=100_000), AfterValidator(valid_note_text)]
ObjectIdText = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$")]


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
    index: Optional[int] = Field(default=None, ge=0)


class TaskPatch(Body):
    text: Optional[TaskText] = None
    done: Optional[bool] = None

    @model_validator(mode="after")
    def _something(self):
        if not self.model_fields_set:
            raise ValueError("give text and/or done")
        if "text" in self.model_fields_set and self.text is None or "done" in self.model_fields_set and self.done is None:
            raise ValueError("text and done cannot be null")
        return self


class TaskMove(Body):
    date: Optional[Date] = Field(description="the day to move to; null moves the task to the backlog")
    parent_id: Optional[ObjectIdText] = None
    index: Optional[int] = Field(default=None, ge=0)


class CarryIn(Body):
    to: Date


class NoteIn(Body):
    text: NoteText
    date: Optional[Date] = None


class NotePatch(Body):
    text: NoteText


class RangeQuery(Query):
    date_from: Optional[Date] = Field(default=None, alias="from")
    date_to: Optional[Date] = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _order(self):
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise ValueError("'to' must not be before 'from'")
        return self


class DaysQuery(RangeQuery):
    limit: int = Field(default=50, ge=1, le=500)
    after: Optional[Date] = None


class NotesQuery(Query):
    date: Optional[Date] = None


class ImportQuery(Query):
    mode: Literal["merge", "replace"]
