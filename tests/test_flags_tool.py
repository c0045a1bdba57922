"""The flags admin tool's document handling (the API calls need a real API server: issue 8)."""
import json
from pathlib import Path

import pytest
from hamcrest import assert_that, contains_string, equal_to, has_item

from tools.flags import FlagsToolError, change, describe, parser

DOCUMENT = json.loads((Path(__file__).resolve().parents[1] / "config" / "flags.json").read_text())


def test_set_makes_a_variant_the_default_and_says_what_changed():
    new, what = change(DOCUMENT, "set", "read_only", "on")
    assert_that(new["flags"]["read_only"]["defaultVariant"], equal_to("on"))
    assert_that(what, equal_to("read_only: defaultVariant off -> on"))


def test_set_leaves_the_given_document_and_other_flags_alone():
    before = json.dumps(DOCUMENT, sort_keys=True)
    new, _ = change(DOCUMENT, "set", "ui_theme", "dark")
    assert_that(json.dumps(DOCUMENT, sort_keys=True), equal_to(before))
    assert_that({k: v for k, v in new["flags"].items() if k != "ui_theme"},
                equal_to({k: v for k, v in DOCUMENT["flags"].items() if k != "ui_theme"}))


def test_disable_and_enable_change_the_state():
    disabled, what = change(DOCUMENT, "disable", "stats")
    assert_that(disabled["flags"]["stats"]["state"], equal_to("DISABLED"))
    assert_that(what, equal_to("stats: state ENABLED -> DISABLED"))
    enabled, _ = change(disabled, "enable", "stats")
    assert_that(enabled["flags"]["stats"]["state"], equal_to("ENABLED"))


def test_a_change_that_changes_nothing_says_so():
    _, what = change(DOCUMENT, "set", "read_only", "off")
    assert_that(what, contains_string("already off"))


@pytest.mark.parametrize("command, name, variant, message", [
    ("set", "nope", "on", "no flag 'nope'"),
    ("set", "read_only", "maybe", "no variant 'maybe'"),
])
def test_an_impossible_change_is_refused_with_the_choices(command, name, variant, message):
    with pytest.raises(FlagsToolError) as error:
        change(DOCUMENT, command, name, variant)
    assert_that(str(error.value), contains_string(message))


def test_list_describes_every_flag():
    lines = describe(DOCUMENT)
    assert_that(len(lines), equal_to(len(DOCUMENT["flags"])))
    assert_that(lines, has_item(contains_string("progress_bar\tENABLED\toff (targeting)")))


def test_the_command_line_names_the_configmap_the_manifests_create():
    args = parser().parse_args(["set", "read_only", "on"])
    assert_that((args.namespace, args.configmap, args.key), equal_to(("kyb", "kyb-flags", "flags.json")))
