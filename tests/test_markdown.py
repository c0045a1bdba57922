"""Journal Markdown: parse into blocks, render back byte-identically."""
import random
import re
from pathlib import Path

import pytest
from hamcrest import (assert_that, calling, contains_exactly, contains_string, equal_to, greater_than_or_equal_to,
                      has_entries, has_item, has_length, has_properties, instance_of, is_, none, raises)

from backend.markdown import MAX_DEPTH, MarkdownError, day_heading, parse, parse_day_heading, render, with_hours

SEED = Path(__file__).resolve().parent / "seed" / "worklog.md"
CORPUS = sorted((Path(__file__).resolve().parent / "corpus").glob("*.md"))


def read(path):
    return path.read_bytes().decode("utf-8")  # not read_text: it would translate "\r\n"


def kinds(blocks, kind):
    return [b for b in blocks if b["kind"] == kind]


def task(blocks, text):
    return next(b for b in kinds(blocks, "task") if b["text"].startswith(text))


def round_trip(text):
    return render(**parse(text))


BOX = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\[([ xX]?)\](?:[ \t\r]|$)")
FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})")


def count_boxes(text):
    """Independent count of (checklist items, done marks) on lines outside code fences."""
    items = done = 0
    fence = None
    for line in text.split("\n"):
        if fence:
            closer = line.strip()
            if closer.startswith(fence) and set(closer) == {fence[0]}:
                fence = None
        elif m := FENCE.match(line):
            fence = m.group(1)
        elif m := BOX.match(line):
            items += 1
            done += m.group(1) in ("x", "X")
    return items, done


@pytest.fixture(scope="module")
def seed():
    return read(SEED)


@pytest.fixture(scope="module")
def seed_blocks(seed):
    return parse(seed)["blocks"]


# --- the seed journal ---

def test_the_seed_round_trips_byte_identically(seed):
    assert_that(round_trip(seed), equal_to(seed))


def test_the_seed_has_unix_newlines_and_ends_with_a_newline(seed):
    assert_that(parse(seed), has_entries(newline="\n", final_newline=True))


def test_the_seed_has_three_days_with_their_dates_and_hours(seed_blocks):
    days = [(d["date"], d["start"], d["end"]) for d in kinds(seed_blocks, "day")]
    assert_that(days, contains_exactly(("2020-03-19", "08:30", "16:30"), ("2020-03-20", "09:30", None),
                                       ("2020-03-23", "09:00", None)))


def test_the_seed_has_47_tasks(seed_blocks):
    assert_that(kinds(seed_blocks, "task"), has_length(47))


def test_the_seed_has_34_done_tasks(seed_blocks):
    assert_that([t for t in kinds(seed_blocks, "task") if t["done"]], has_length(34))


def test_the_seed_has_13_open_tasks(seed_blocks):
    assert_that([t for t in kinds(seed_blocks, "task") if not t["done"]], has_length(13))


def test_the_seed_days_have_29_7_and_3_tasks(seed_blocks):
    per_day = [sum(1 for t in kinds(seed_blocks, "task") if t["day"] == seed_blocks.index(d))
               for d in kinds(seed_blocks, "day")]
    assert_that(per_day, contains_exactly(29, 7, 3))


def test_the_seed_backlog_has_8_open_tasks_without_a_day(seed_blocks):
    backlog = [t for t in kinds(seed_blocks, "task") if t["day"] is None]
    assert_that([t["done"] for t in backlog], equal_to([False] * 8))


def test_the_xfs_growfs_task_is_at_depth_3_under_the_partition_table_task(seed_blocks):
    growfs = task(seed_blocks, "`xfs_growfs /`")
    assert_that(growfs["depth"], equal_to(3))
    assert_that(seed_blocks[growfs["parent"]]["text"], equal_to("Extend partiton table with 16.23 GiB more"))


def test_the_bracket_pair_lines_are_open_tasks(seed_blocks):
    pairs = [t for t in kinds(seed_blocks, "task") if t["box"] == "[]"]
    assert_that([(t["done"], t["text"][:16]) for t in pairs],
                contains_exactly((False, "Aggregate in Mon"), (False, "Install docker-c"), (False, "Chanter 4: Queri")))


def test_the_conda_task_text_contains_its_three_continuation_lines(seed_blocks):
    conda = task(seed_blocks, "Setup conda enviroment")
    assert_that(conda["text"], equal_to('Setup conda enviroment "kubec"  \n`conta create -n kubec python=3.6 pip`  \n'
                                        "`source activate kubec`  \n`source deactivate`  "))


def test_the_conda_task_children_follow_its_continuation_lines(seed_blocks):
    conda = seed_blocks.index(task(seed_blocks, "Setup conda enviroment"))
    assert_that(task(seed_blocks, "Install Hamcrest"), has_entries(parent=conda, depth=1, done=False))


def test_the_seed_keeps_its_whitespace_only_line_in_a_note(seed_blocks):
    assert_that([n["text"] for n in kinds(seed_blocks, "note")], has_item("    "))


def test_the_seed_ends_with_a_note_holding_its_final_empty_line(seed_blocks):
    assert_that(seed_blocks[-1]["text"], contains_string("from the cluster.\n"))


# --- the corpus ---

def test_the_corpus_has_at_least_12_files():
    assert_that(len(CORPUS), greater_than_or_equal_to(12))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_corpus_file_round_trips_byte_identically(path):
    text = read(path)
    assert_that(round_trip(text), equal_to(text))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_corpus_file_render_is_a_fixed_point(path):
    once = round_trip(read(path))
    assert_that(round_trip(once), equal_to(once))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_corpus_file_keeps_every_checklist_item_and_done_mark(path):
    text = read(path)
    tasks = kinds(parse(round_trip(text))["blocks"], "task")
    assert_that((len(tasks), sum(t["done"] for t in tasks)), equal_to(count_boxes(text)))


def test_random_documents_round_trip_byte_identically():
    pieces = ["- [ ] a", "- [x] b", "    - [X] c", "\t* []", "1) [x]", "## Dag 1.2.20 8:00 - 9:00", "## Dag 1.2.20",
              "### Backlog", "# x", "```", "~~~", "---", "***", "text  ", "", "   ", "\r", "é 🚀", "- item", "> q"]
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice(pieces) + rng.choice(["\n", "\r\n", "", "\n\n"]) for _ in range(rng.randint(0, 25)))
        assert_that(round_trip(text), equal_to(text))


# --- line endings, BOM, empty input ---

def test_an_empty_text_has_no_blocks_and_renders_empty():
    assert_that(parse(""), equal_to({"newline": "\n", "final_newline": False, "blocks": []}))
    assert_that(render([]), equal_to(""))


def test_a_lone_newline_is_one_empty_note():
    assert_that(parse("\n")["blocks"], equal_to([{"kind": "note", "text": "", "day": None}]))


def test_a_crlf_file_uses_crlf_and_keeps_no_carriage_return_in_blocks():
    parsed = parse("## Dag 1.2.20\r\n- [ ] a  \r\nmore\r\n")
    assert_that(parsed["newline"], equal_to("\r\n"))
    assert_that(parsed["blocks"][1]["text"], equal_to("a  \nmore"))


def test_mixed_line_endings_use_lf_and_keep_the_carriage_return_in_the_text():
    parsed = parse("- [ ] a\r\n- [x] b\n")
    assert_that(parsed["newline"], equal_to("\n"))
    assert_that(parsed["blocks"][0]["text"], equal_to("a\r"))


def test_a_lone_carriage_return_is_a_character_in_a_line():
    assert_that(parse("- [ ] a\rb")["blocks"][0]["text"], equal_to("a\rb"))


def test_a_byte_order_mark_stays_on_the_first_block():
    parsed = parse("\ufeff## Dag 1.2.20\n- [ ] a\n")
    assert_that(parsed["blocks"][0], has_entries(kind="day", heading="\ufeff## Dag 1.2.20"))


# --- tasks ---

def test_bullets_and_numbers_with_a_box_are_tasks():
    blocks = parse("* [ ] a\n+ [X] b\n1. [ ] c\n2) [x] d\n")["blocks"]
    assert_that([(t["marker"], t["box"], t["done"]) for t in blocks],
                contains_exactly(("* ", "[ ]", False), ("+ ", "[X]", True),
                                 ("1. ", "[ ]", False), ("2) ", "[x]", True)))


def test_a_box_not_followed_by_whitespace_is_not_a_task():
    assert_that(kinds(parse("- [x]done\n")["blocks"], "task"), has_length(0))


def test_a_list_item_without_a_box_is_a_note():
    assert_that(parse("- a\n1. b\n")["blocks"], equal_to([{"kind": "note", "text": "- a\n1. b", "day": None}]))


def test_a_tab_indents_to_the_next_multiple_of_four():
    blocks = parse("- [ ] a\n  \t- [ ] b\n    - [ ] c\n\t\t- [ ] d\n")["blocks"]
    assert_that([(t["depth"], t["parent"]) for t in blocks], contains_exactly((0, None), (1, 0), (1, 0), (2, 2)))


def test_the_parent_is_the_nearest_task_with_smaller_indentation():
    blocks = parse("- [ ] a\n    - [ ] b\n        - [ ] c\n  - [ ] d\n")["blocks"]
    assert_that(blocks[3], has_entries(parent=0, depth=1))


def test_a_note_between_tasks_keeps_the_hierarchy():
    blocks = parse("- [ ] a\n\nnote\n    - [ ] b\n")["blocks"]
    assert_that(blocks[2], has_entries(parent=0, depth=1))


def test_a_heading_resets_the_hierarchy():
    blocks = parse("- [ ] a\n### Sub\n    - [ ] b\n")["blocks"]
    assert_that(blocks[2], has_entries(parent=None, depth=0))


def test_a_continuation_line_joins_the_task_text_raw():
    assert_that(parse("- [ ] a  \n  b  \nc\n")["blocks"][0]["text"], equal_to("a  \n  b  \nc"))


@pytest.mark.parametrize("breaker", ["   ", "- item", "1. item", "* [ ] task", "---", "* * *", "## H", "```"])
def test_a_continuation_ends_at_blanks_list_items_rules_headings_and_fences(breaker):
    assert_that(parse(f"- [ ] a\n{breaker}\n")["blocks"][0]["text"], equal_to("a"))


def test_a_task_renders_with_its_raw_parts():
    assert_that(round_trip("  1.  [X]\tdone  \n"), equal_to("  1.  [X]\tdone  \n"))


# --- days and sections ---

def test_tasks_and_notes_belong_to_the_day_above_them():
    blocks = parse("## Dag 1.2.20\nnote\n- [ ] a\n")["blocks"]
    assert_that([b["day"] for b in blocks[1:]], equal_to([0, 0]))


def test_a_deeper_heading_keeps_the_day():
    assert_that(parse("## Dag 1.2.20\n### Meeting\n- [ ] a\n")["blocks"][2]["day"], equal_to(0))


def test_a_heading_at_the_same_level_ends_the_day():
    assert_that(parse("## Dag 1.2.20\n## Notes\n- [ ] a\n")["blocks"][2]["day"], is_(none()))


@pytest.mark.parametrize("heading", ["### Backlog", "###### backlog", "# BACKLOG"])
def test_a_backlog_heading_at_any_level_ends_the_day(heading):
    assert_that(parse(f"## Dag 1.2.20\n{heading}\n- [ ] a\n")["blocks"][2]["day"], is_(none()))


def test_a_repeated_date_is_a_note_of_the_first_day_and_its_tasks_join_that_day():
    blocks = parse("## Dag 1.2.20\n## Other\n## 2020-02-01 13:00 - 14:00\n- [ ] a\n")["blocks"]
    assert_that([(b["kind"], b["day"]) for b in blocks[1:]], equal_to([("note", None), ("note", 0), ("task", 0)]))


def test_an_impossible_date_heading_is_a_note():
    assert_that(parse("## Dag 31.2.20\n")["blocks"],
                equal_to([{"kind": "note", "text": "## Dag 31.2.20", "day": None}]))


# --- fences and front matter ---

def test_checkboxes_and_day_headings_inside_a_fence_are_note_text():
    blocks = parse("```\n- [ ] x\n## Dag 1.2.20\n```\n- [x] y\n")["blocks"]
    assert_that([b["kind"] for b in blocks], equal_to(["note", "task"]))


def test_a_fence_closes_only_with_the_same_character_and_at_least_its_length():
    blocks = parse("~~~~\n```\n~~~\n- [ ] x\n~~~~~\n- [ ] y\n")["blocks"]
    assert_that([b["kind"] for b in blocks], equal_to(["note", "task"]))


def test_an_unclosed_fence_runs_to_the_end_of_the_file():
    assert_that(parse("- [ ] a\n```\n- [ ] b\n")["blocks"][1],
                equal_to({"kind": "note", "text": "```\n- [ ] b", "day": None}))


def test_a_fence_indented_inside_a_list_is_a_fence():
    assert_that(kinds(parse("- [ ] a\n    ```\n    - [ ] b\n    ```\n")["blocks"], "task"), has_length(1))


def test_an_indented_fence_outside_a_list_is_not_a_fence():
    assert_that(kinds(parse("text\n\n    ```\n- [ ] b\n")["blocks"], "task"), has_length(1))


def test_triple_backticks_with_backticks_after_them_are_inline_code_not_a_fence():
    assert_that(kinds(parse("```a``` b\n- [ ] c\n")["blocks"], "task"), has_length(1))


def test_yaml_front_matter_is_one_note():
    blocks = parse("---\ntitle: x\n## Dag 1.2.20\n---\ntext\n")["blocks"]
    assert_that([b["text"] for b in blocks], equal_to(["---\ntitle: x\n## Dag 1.2.20\n---", "text"]))


def test_an_unclosed_front_matter_is_an_ordinary_rule():
    assert_that(kinds(parse("---\n## Dag 1.2.20\n")["blocks"], "day"), has_length(1))


# --- render of app-created blocks ---

def test_an_app_created_task_gets_default_indent_marker_box_and_gap():
    blocks = [{"kind": "task", "text": "a", "done": False, "depth": 0},
              {"kind": "task", "text": "b", "done": True, "depth": 2}]
    assert_that(render(blocks), equal_to("- [ ] a\n        - [x] b\n"))


def test_an_app_created_day_renders_its_canonical_heading():
    blocks = [{"kind": "day", "date": "2020-03-24", "start": "08:00", "end": None}]
    assert_that(render(blocks, final_newline=False), equal_to("## Dag 24.3.20 kl 8:00"))


@pytest.mark.parametrize("box, done, shown", [("[]", True, "[x]"), ("[ ]", True, "[x]"), ("[X]", True, "[X]"),
                                              ("[X]", False, "[ ]"), ("[x]", False, "[ ]"), ("[]", False, "[]")])
def test_toggling_done_changes_the_box_only_when_it_disagrees(box, done, shown):
    block = {"kind": "task", "text": "a", "done": done, "indent": "", "marker": "- ", "box": box, "gap": " "}
    assert_that(render([block], final_newline=False), equal_to(f"- {shown} a"))


def test_render_uses_the_given_newline_inside_blocks_too():
    blocks = [{"kind": "note", "text": "a\nb"}, {"kind": "task", "text": "c\nd", "done": False}]
    assert_that(render(blocks, newline="\r\n"), equal_to("a\r\nb\r\n- [ ] c\r\nd\r\n"))


def test_render_rejects_an_unknown_block_kind():
    assert_that(calling(render).with_args([{"kind": "image"}]), raises(ValueError))


# --- day headings ---

@pytest.mark.parametrize("line, date, start, end", [
    ("## Dag 19.3.20 8:30 - 16:30", "2020-03-19", "08:30", "16:30"),
    ("## Dag 20.3.20 kl 9:30", "2020-03-20", "09:30", None),
    ("## 2020-03-19", "2020-03-19", None, None),
    ("# Day 19.3.2020 kl. 9:00", "2020-03-19", "09:00", None),
    ("### 19/3/2020 9-17", "2020-03-19", "09:00", "17:00"),
    ("## Monday, 16.3.20 at 7:05", "2020-03-16", "07:05", None),
    ("## Tag 19.3.20 8:30–16:30", "2020-03-19", "08:30", "16:30"),
    ("## Date 19.3.20 8:30 to 23:59  ", "2020-03-19", "08:30", "23:59"),
    ("###### Mon 19.3.20 0:00-9:15", "2020-03-19", "00:00", "09:15"),
])
def test_a_day_heading_gives_its_date_and_hours(line, date, start, end):
    assert_that(parse_day_heading(line), equal_to({"date": date, "start": start, "end": end}))


@pytest.mark.parametrize("line", ["## Dag 31.2.20", "## 2020-13-01", "## Dag 19.3.20 25:00", "## Dag 19.3.20 9:60",
                                  "## Dag 19.3.20 9", "## Dag 19.3.20 meeting", "## Two words 19.3.20",
                                  "Dag 19.3.20", "##Dag 19.3.20", "####### Dag 19.3.20", "## Notes"])
def test_a_line_that_is_not_a_valid_day_heading_gives_none(line):
    assert_that(parse_day_heading(line), is_(none()))


@pytest.mark.parametrize("args, heading", [
    (("2020-03-19", "08:30", "16:30"), "## Dag 19.3.20 8:30 - 16:30"),
    (("2020-03-20", "09:30", None), "## Dag 20.3.20 kl 9:30"),
    (("2020-03-20", None, None), "## Dag 20.3.20"),
    (("1999-12-31", None, None), "## Dag 31.12.1999"),
])
def test_day_heading_writes_the_canonical_form(args, heading):
    assert_that(day_heading(*args), equal_to(heading))


def test_day_heading_reads_back_as_the_same_day():
    assert_that(parse_day_heading(day_heading("1999-12-31", "07:05", "23:00")),
                equal_to({"date": "1999-12-31", "start": "07:05", "end": "23:00"}))


def test_day_heading_rejects_an_end_without_a_start():
    assert_that(calling(day_heading).with_args("2020-03-20", None, "17:00"), raises(ValueError))


@pytest.mark.parametrize("heading, start, end, result", [
    ("## Dag 20.3.20 kl 9:30", "09:00", "17:00", "## Dag 20.3.20 9:00 - 17:00"),
    ("## Dag 19.3.20 8:30 - 16:30", "08:00", None, "## Dag 19.3.20 kl 8:00"),
    ("## Dag 19.3.20 8:30 - 16:30", None, None, "## Dag 19.3.20"),
    ("## 2020-03-19", "09:00", "17:00", "## 2020-03-19 9:00 - 17:00"),
    ("### Monday, 19/3/2020 9-17  ", "10:00", "18:00", "### Monday, 19/3/2020 10:00 - 18:00"),
    ("\ufeff## Dag 19.3.20 kl 9:00", "10:00", None, "\ufeff## Dag 19.3.20 kl 10:00"),
    ("## Release", "09:00", "17:00", "## Release 9:00 - 17:00"),
])
def test_with_hours_rewrites_the_hours_and_keeps_the_rest(heading, start, end, result):
    assert_that(with_hours(heading, start, end), equal_to(result))


# --- hostile input ---

def test_a_markdown_error_is_a_value_error_with_a_line():
    assert_that(MarkdownError("bad", 3), has_properties(line=3))
    assert_that(MarkdownError("bad"), instance_of(ValueError))


def test_a_nul_byte_is_rejected_with_its_line():
    assert_that(calling(parse).with_args("a\nb\0"), raises(MarkdownError, matching=has_properties(line=2)))


def test_nesting_at_the_maximum_depth_is_accepted():
    text = "".join("    " * i + "- [ ] x\n" for i in range(MAX_DEPTH + 1))
    assert_that(kinds(parse(text)["blocks"], "task")[-1]["depth"], equal_to(MAX_DEPTH))


def test_nesting_deeper_than_the_maximum_names_the_first_line_too_deep():
    text = "".join(" " * i + "- [ ] x\n" for i in range(200))
    assert_that(calling(parse).with_args(text), raises(MarkdownError, matching=has_properties(line=MAX_DEPTH + 2)))


def test_more_than_two_million_lines_are_rejected():
    assert_that(calling(parse).with_args("\n" * 2_000_001), raises(MarkdownError))


def test_a_huge_single_line_parses_and_round_trips():
    text = "- [ ] " + "x" * 5_000_000 + " " * 1_000_000 + "\n" + "\t" * 1_000_000 + "#" * 1_000_000
    assert_that(round_trip(text) == text, is_(True))


def test_a_50000_task_file_parses_to_50000_tasks():
    # How fast is measured by `make import-bench`, not here.
    text = "".join(f"## Dag {i // 500 % 28 + 1}.{i // 14000 + 1}.20\n" * (i % 500 == 0)
                   + "    " * (i % 4) + f"- [{' x'[i % 2]}] task {i}\n" for i in range(50_000))
    blocks = parse(text)["blocks"]
    assert_that(sum(1 for b in blocks if b["kind"] == "task"), equal_to(50_000))
