"""Pure helpers of the frontend: where a task can move in its tree, and chart geometry."""
from hamcrest import assert_that, contains_exactly, equal_to, has_entries, has_length

from frontend import charts, tree


def task(task_id, *children, done=False):
    return {"id": task_id, "done": done, "children": list(children)}


def test_a_first_task_can_only_move_down():
    tasks = tree.plan_moves([task("a"), task("b")])

    assert_that(tasks[0]["moves"], equal_to({"up": None, "down": {"parent_id": None, "index": 1},
                                             "indent": None, "outdent": None}))


def test_a_later_task_moves_up_before_its_sibling_and_nests_under_it_as_last_child():
    tasks = tree.plan_moves([task("a", task("a1")), task("b")])

    assert_that(tasks[1]["moves"], has_entries(up={"parent_id": None, "index": 0}, down=None,
                                               indent={"parent_id": "a", "index": None}))


def test_a_sub_task_moves_out_to_just_after_its_parent():
    tasks = tree.plan_moves([task("a"), task("b", task("b1"), task("b2", task("b21")))])

    assert_that(tasks[1]["children"][1]["moves"]["outdent"], equal_to({"parent_id": None, "index": 2}))
    assert_that(tasks[1]["children"][1]["children"][0]["moves"]["outdent"], equal_to({"parent_id": "b", "index": 2}))


def test_flatten_lists_every_task_with_its_depth_in_order():
    pairs = tree.flatten([task("a", task("a1", task("a11"))), task("b")])

    assert_that([(t["id"], depth) for t, depth in pairs], equal_to([("a", 0), ("a1", 1), ("a11", 2), ("b", 0)]))


def test_count_counts_done_tasks_at_every_depth():
    assert_that(tree.count([task("a", task("a1", done=True)), task("b", done=True)]), equal_to((2, 3)))


def test_nice_steps_are_one_two_or_five_times_a_power_of_ten():
    assert_that([charts.nice_step(top) for top in (0, 3, 8, 27, 480, 0.9)], equal_to([1, 1, 2, 10, 200, 0.5]))


def test_the_tallest_bar_reaches_the_top_tick_when_it_is_round():
    chart = charts.bar_chart([("2026-11-23", 4), ("2026-11-24", 8)], whole=True)

    tallest, top_tick = chart["bars"][1], chart["ticks"][-1]
    assert_that(tallest["y"], equal_to(top_tick["y"]))
    assert_that(tallest["y"] + tallest["height"], equal_to(chart["baseline"]))
    assert_that([t["label"] for t in chart["ticks"]], equal_to(["0", "2", "4", "6", "8"]))


def test_dates_are_labelled_without_the_year_and_weeks_whole():
    chart = charts.bar_chart([("2026-11-23", 1), ("2026-W48", 2)])

    assert_that([b["short"] for b in chart["bars"]], equal_to(["11-23", "2026-W48"]))


def test_counts_get_whole_ticks_even_when_small():
    chart = charts.bar_chart([("a", 1)], whole=True)

    assert_that([t["label"] for t in chart["ticks"]], equal_to(["0", "1"]))


def test_many_bars_label_only_every_nth_so_labels_do_not_overlap():
    chart = charts.bar_chart([(f"d{i}", i) for i in range(60)])

    assert_that([b for b in chart["bars"] if b["show_label"]], has_length(charts.MAX_LABELS))


def test_an_empty_chart_has_no_bars_and_a_zero_axis():
    chart = charts.bar_chart([])

    assert_that(chart["bars"], equal_to([]))
    assert_that([t["label"] for t in chart["ticks"]], contains_exactly("0", "1"))
