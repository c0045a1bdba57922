"""Work-journal Markdown: parse into ordered blocks and render back.

parse() splits a journal into day headings, checklist tasks and verbatim
notes. Every block keeps its raw text, so render(**parse(text)) == text for
any input; only blocks created or edited by the app fall back to defaults.
"""
import re
from datetime import date as _date

MAX_DEPTH = 50
MAX_LINES = 2_000_000

_TASK = re.compile(r"([ \t]*)((?:[-*+]|\d{1,9}[.)])[ \t]+)(\[[ xX]?\])(?=[ \t\r]|\Z)([ \t]*)(.*)")
_LIST = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])(?=[ \t\r]|\Z)")
_HEADING = re.compile(r" {0,3}(#{1,6})(?=[ \t\r]|\Z)")
_FENCE = re.compile(r"([ \t]*)(`{3,}|~{3,})(.*)")
_DAY = re.compile(r"""(?:[^\W\d_]+\.?,?[ \t]+)?
    (?P<date>(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4}|\d{2})
      |(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})
      |(?P<sd>\d{1,2})/(?P<sm>\d{1,2})/(?P<sy>\d{4}))
    (?:[ \t]+(?P<time>.+))?\Z""", re.X)
_T = r"(\d{1,2})(?::(\d{2}))?"
_RANGE = re.compile(_T + r"(?:[ \t]*[-–][ \t]*|[ \t]+to[ \t]+)" + _T + r"\Z", re.I)
_START = re.compile(r"((?:kl\.?|at)[ \t]+)?" + _T + r"\Z", re.I)
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})\Z")
_DONE = ("[x]", "[X]")


class MarkdownError(ValueError):
    """Input that cannot be taken in; .line is the 1-based line number or None."""

    def __init__(self, message, line=None):
        super().__init__(message)  # callers add the line themselves, e.g. " (line 52)"
        self.line = line


def _width(indent):
    """Indentation width; a tab advances to the next multiple of 4."""
    if "\t" not in indent:
        return len(indent)
    *tabbed, last = indent.split("\t")
    width = 0
    for part in tabbed:
        width = (width + len(part)) // 4 * 4 + 4
    return width + len(last)


def _hm(hours, minutes):
    h, m = int(hours), int(minutes or 0)
    return f"{h:02d}:{m:02d}" if h < 24 and m < 60 else None


def _heading(line):
    """(level, text, text offset) for an ATX heading line, else None."""
    m = _HEADING.match(line, 1 if line[:1] == "\ufeff" else 0)
    if not m:
        return None
    rest = line[m.end():]
    offset = m.end() + len(rest) - len(rest.lstrip())
    text = rest.strip()
    bare = text.rstrip("#")
    if not bare or bare[-1] in " \t":  # optional closing sequence "## x ##"
        text = bare.rstrip()
    return len(m.group(1)), text, offset


def _day(text):
    """({"date", "start", "end"}, end of the date in text) or None."""
    m = _DAY.match(text)
    if not m:
        return None
    d, mo, y = m.group("d", "m", "y") if m["d"] else m.group("id", "im", "iy") if m["iy"] else m.group("sd", "sm", "sy")
    try:
        day = _date(int(y) + (2000 if len(y) == 2 else 0), int(mo), int(d)).isoformat()
    except ValueError:
        return None
    start = end = None
    if m["time"]:
        r = _RANGE.fullmatch(m["time"])
        s = None if r else _START.fullmatch(m["time"])
        if r:
            start, end = _hm(*r.group(1, 2)), _hm(*r.group(3, 4))
            if not (start and end):
                return None
        elif s and (s[1] or s[3]):  # a bare "9" is not a time, "9:30" or "kl 9" is
            start = _hm(s[2], s[3])
            if not start:
                return None
        else:
            return None
    return {"date": day, "start": start, "end": end}, m.end("date")


def _day_line(line):
    found = _heading(line)
    info = found and _day(found[1])
    return info and (info[0], found[2] + info[1])


def parse_day_heading(line):
    """Return {"date": "YYYY-MM-DD", "start": "HH:MM"|None, "end": ...} for a day heading line, else None."""
    found = _day_line(line)
    return found[0] if found else None


def _clock(value):
    m = _CLOCK.match(value or "")
    hm = m and _hm(*m.groups())
    if not hm:
        raise ValueError(f"not a time: {value!r}")
    return f"{int(hm[:2])}:{hm[3:]}"


def _hours(start, end):
    if start is None:
        if end is not None:
            raise ValueError("end time without start time")
        return ""
    return f" {_clock(start)} - {_clock(end)}" if end is not None else f" kl {_clock(start)}"


def day_heading(date, start=None, end=None):
    """Canonical heading for an app-created day, e.g. "## Dag 19.3.20 8:30 - 16:30"."""
    d = _date.fromisoformat(date)
    year = f"{d.year % 100:02d}" if 2000 <= d.year <= 2099 else f"{d.year:04d}"
    return f"## Dag {d.day}.{d.month}.{year}" + _hours(start, end)


def with_hours(heading, start, end):
    """Replace the hours of a day heading, keeping its prefix and date style; otherwise append them."""
    found = _day_line(heading)
    return (heading[:found[1]] if found else heading.rstrip()) + _hours(start, end)


def _is_break(stripped):
    s = stripped.replace(" ", "").replace("\t", "")
    return len(s) >= 3 and s[0] in "-*_" and not s.strip(s[0])


def _fence(line, in_list):
    """(char, length) when the line opens a code fence, else None."""
    m = ("`" in line or "~" in line) and _FENCE.match(line)
    if not m or (m[2][0] == "`" and "`" in m[3]) or (_width(m[1]) > 3 and not in_list):
        return None
    return m[2][0], len(m[2])


def parse(text):
    """Parse journal text into {"newline", "final_newline", "blocks"}; raise MarkdownError for hostile input."""
    if not isinstance(text, str):
        raise TypeError("parse() takes str")
    nul = text.find("\0")
    if nul >= 0:
        raise MarkdownError("NUL byte in input", text.count("\n", 0, nul) + 1)
    breaks = text.count("\n")
    final = text.endswith("\n")
    if breaks + (not final) > MAX_LINES:
        raise MarkdownError(f"more than {MAX_LINES} lines")
    newline = "\r\n" if breaks and text.count("\r\n") == breaks else "\n"
    blocks = []
    if not text:
        return {"newline": newline, "final_newline": False, "blocks": blocks}
    lines = text.split(newline)
    if final:
        lines.pop()
    # The BOM is moved out so line 1 is classified normally, then put back on the first block.
    bom = lines[0][:1] == "\ufeff"
    if bom:
        lines[0] = lines[0][1:]

    first = 0
    if lines[0].rstrip() == "---":  # YAML front matter, only when closed
        close = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
        if close is not None:
            blocks.append({"kind": "note", "text": lines[:close + 1], "day": None})
            first = close + 1

    day = None          # index of the day block in context
    day_level = 0
    seen = {}           # date -> index of its first day block
    stack = []          # (width, index) of the open task chain since the last heading
    note = task = None  # index of the block that takes the next note / continuation line
    fence = None
    in_list = False
    for number, line in enumerate(lines[first:], first + 1):
        if fence:
            s = line.strip()
            if len(s) >= fence[1] and not s.strip(fence[0]):
                fence = None
        elif m := _TASK.match(line):
            indent, marker, box, gap, rest = m.groups()
            width = _width(indent)
            while stack and stack[-1][0] >= width:
                stack.pop()
            if len(stack) > MAX_DEPTH:
                raise MarkdownError(f"tasks nested deeper than {MAX_DEPTH} levels", number)
            task, note, in_list = len(blocks), None, True
            blocks.append({"kind": "task", "text": [rest], "done": box in _DONE, "depth": len(stack),
                           "indent": indent, "marker": marker, "box": box, "gap": gap,
                           "parent": stack[-1][1] if stack else None, "day": day})
            stack.append((width, task))
            continue
        elif fence := _fence(line, in_list):
            task = None
        elif (head := _heading(line)) is not None:
            level, title, _ = head
            info = _day(title)
            stack.clear()
            task, in_list = None, False
            if info and info[0]["date"] not in seen:
                day = seen[info[0]["date"]] = len(blocks)
                day_level, note = level, None
                blocks.append({"kind": "day", **info[0], "heading": line})
                continue
            if info:  # repeated date: a note that switches back to the first day of that date
                day, day_level = seen[info[0]["date"]], level
            elif day is not None and (level <= day_level or title.lower() == "backlog"):
                day = None
            note = None
        else:
            stripped = line.strip()
            is_list = _LIST.match(line)
            if task is not None and stripped and not is_list and not _is_break(stripped):
                blocks[task]["text"].append(line)
                continue
            task = None
            if is_list:
                in_list = True
            elif stripped and not line[0].isspace():
                in_list = False
        if note is None:
            note = len(blocks)
            blocks.append({"kind": "note", "text": [], "day": day})
        blocks[note]["text"].append(line)

    for block in blocks:
        if block["kind"] != "day":
            block["text"] = "\n".join(block["text"])
    if bom:
        key = {"day": "heading", "task": "indent", "note": "text"}[blocks[0]["kind"]]
        blocks[0][key] = "\ufeff" + blocks[0][key]
    return {"newline": newline, "final_newline": final, "blocks": blocks}


def _box(done, box):
    if done:
        return box if box in _DONE else "[x]"
    return box if box in ("[ ]", "[]") else "[ ]"


def _get(block, key, default):
    value = block.get(key)
    return default if value is None else value


def render(blocks, newline="\n", final_newline=True):
    """Render blocks in order; parsed blocks come back byte-identical, app-created ones get defaults."""
    out = []
    for b in blocks:
        kind = b["kind"]
        if kind == "day":
            heading = b.get("heading")
            out.append(day_heading(b["date"], b.get("start"), b.get("end")) if heading is None else heading)
        elif kind == "task":
            out.append(_get(b, "indent", "    " * _get(b, "depth", 0)) + _get(b, "marker", "- ")
                       + _box(b["done"], b.get("box")) + _get(b, "gap", " ") + b["text"])
        elif kind == "note":
            out.append(b["text"])
        else:
            raise ValueError(f"unknown block kind: {kind!r}")
    if not out:
        return ""
    text = "\n".join(out) + ("\n" if final_newline else "")
    return text if newline == "\n" else text.replace("\n", newline)
