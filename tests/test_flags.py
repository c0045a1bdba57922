"""The flag evaluator as pure functions: flagd's format, JsonLogic targeting, fractional rollouts."""
import copy
import json
import random
import string
from pathlib import Path

import mmh3
import pytest
from hamcrest import assert_that, close_to, contains_string, equal_to, has_length

from backend.flags import FlagDisabled, FlagFileError, apply, evaluate, murmur3_32, validate

DOCUMENT = json.loads((Path(__file__).resolve().parents[1] / "config" / "flags.json").read_text())


def flag(targeting=None, variants=None, default="off", state="ENABLED"):
    body = {"state": state, "variants": variants or {"on": True, "off": False}, "defaultVariant": default}
    if targeting is not None:
        body["targeting"] = targeting
    return validate({"flags": {"f": body}})


def test_the_shipped_flag_file_is_valid_and_has_every_flag_the_app_asks_for():
    from backend.flags import DEFAULTS

    assert_that(sorted(validate(DOCUMENT)), equal_to(sorted(DEFAULTS)))


def test_a_flag_without_targeting_answers_its_default_variant():
    assert_that(evaluate(flag(), "f", {})[:2], equal_to((False, "off")))


def test_targeting_picks_a_variant_by_user():
    flags = flag({"if": [{"in": [{"var": "user_id"}, ["ann", "bob"]]}, "on", "off"]})
    assert_that([evaluate(flags, "f", {"user_id": u})[0] for u in ("ann", "bob", "eve")],
                equal_to([True, True, False]))


def test_targeting_by_email_domain_and_role():
    flags = flag({"if": [{"or": [{"ends_with": [{"var": "email"}, "@kyb.example"]},
                                 {"in": ["admin", {"var": "roles"}]}]}, "on", None]})
    assert_that(evaluate(flags, "f", {"email": "ann@kyb.example"})[0], equal_to(True))
    assert_that(evaluate(flags, "f", {"email": "eve@else.example", "roles": ["admin"]})[0], equal_to(True))
    assert_that(evaluate(flags, "f", {"email": "eve@else.example", "roles": ["user"]})[0], equal_to(False))


def test_targeting_that_names_no_variant_falls_back_to_the_default():
    assert_that(evaluate(flag({"if": [False, "on", "nonexistent"]}), "f", {})[:2], equal_to((False, "off")))


def test_a_boolean_targeting_result_names_the_variant_true_or_false():
    flags = flag({"==": [{"var": "user_id"}, "ann"]}, variants={"true": "blue", "false": "red"}, default="false")
    assert_that(evaluate(flags, "f", {"user_id": "ann"})[0], equal_to("blue"))


def test_a_disabled_flag_is_reported_as_disabled():
    with pytest.raises(FlagDisabled):
        evaluate(flag(state="DISABLED"), "f", {})


def test_an_unknown_flag_is_a_key_error():
    with pytest.raises(KeyError):
        evaluate(flag(), "nope", {})


def test_string_variants_are_answered_as_strings():
    assert_that(evaluate(validate(DOCUMENT), "ui_theme", {})[0], equal_to("light"))


def rollout(percent_on):
    return flag({"fractional": [["on", percent_on], ["off", 100 - percent_on]]})


def test_a_fractional_rollout_is_stable_for_a_user():
    flags = rollout(50)
    first = [evaluate(flags, "f", {"targetingKey": f"user-{n}"})[0] for n in range(200)]
    again = [evaluate(copy.deepcopy(flags), "f", {"targetingKey": f"user-{n}"})[0] for n in range(200)]
    assert_that(again, equal_to(first))


@pytest.mark.parametrize("percent", [50, 10, 90])
def test_a_fractional_rollout_splits_ten_thousand_users_within_three_percent(percent):
    flags = rollout(percent)
    on = sum(evaluate(flags, "f", {"targetingKey": f"user-{n}"})[0] for n in range(10_000))
    assert_that(on / 10_000 * 100, close_to(percent, 3))


def test_a_three_way_split_gives_every_variant_its_share():
    flags = flag({"fractional": [["a", 20], ["b", 30], ["c", 50]]}, variants={"a": "a", "b": "b", "c": "c"},
                 default="a")
    counts = {"a": 0, "b": 0, "c": 0}
    for n in range(10_000):
        counts[evaluate(flags, "f", {"targetingKey": str(n)})[0]] += 1
    assert_that([counts["a"] / 100, counts["b"] / 100, counts["c"] / 100],
                equal_to([pytest.approx(20, abs=3), pytest.approx(30, abs=3), pytest.approx(50, abs=3)]))


def test_a_fractional_rollout_can_bucket_by_another_attribute():
    flags = flag({"fractional": [{"var": "email"}, ["on", 50], ["off", 50]]})
    same_email = {evaluate(flags, "f", {"targetingKey": str(n), "email": "ann@x"})[0] for n in range(50)}
    assert_that(same_email, has_length(1))


def test_a_fractional_rollout_without_a_targeting_key_answers_the_default():
    assert_that(evaluate(rollout(100), "f", {})[:2], equal_to((False, "off")))


def test_our_murmur3_equals_the_reference_implementation():
    rng = random.Random(7)
    for _ in range(2000):
        data = "".join(rng.choice(string.printable + "äö€😀") for _ in range(rng.randint(0, 40))).encode()
        assert murmur3_32(data) == mmh3.hash(data), data


@pytest.mark.parametrize("document, message", [
    ({}, "'flags' object"),
    ({"flags": {}, "extra": 1}, "unknown top-level"),
    ({"flags": {"f": {"state": "ON", "variants": {"a": 1}, "defaultVariant": "a"}}}, "state"),
    ({"flags": {"f": {"state": "ENABLED", "variants": {}, "defaultVariant": "a"}}}, "variants"),
    ({"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "b"}}}, "defaultVariant"),
    ({"flags": {"f": {"state": "ENABLED", "variants": {"a": 1, "b": "x"}, "defaultVariant": "a"}}}, "one type"),
    ({"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "description": "x"}}},
     "unknown keys"),
    ({"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a",
                      "targeting": {"sem_ver": ["1.0", ">", "0.9"]}}}}, "unsupported"),
    ({"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a",
                      "targeting": {"$ref": "missing"}}}}, "$ref"),
])
def test_an_invalid_document_is_rejected_with_a_reason(document, message):
    with pytest.raises(FlagFileError) as error:
        validate(document)
    assert_that(str(error.value), contains_string(message))


def test_shared_evaluators_are_resolved_by_ref():
    flags = validate({"$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@kyb.example"]}},
                      "flags": {"f": {"state": "ENABLED", "variants": {"true": 1, "false": 0},
                                      "defaultVariant": "false", "targeting": {"$ref": "staff"}}}})
    assert_that(evaluate(flags, "f", {"email": "a@kyb.example"})[0], equal_to(1))


def test_json_logic_comparisons_and_logic():
    cases = [({"<": [1, 2, 3]}, True), ({"<=": [1, 1]}, True), ({">": [1, 2]}, False), ({"!": [True]}, False),
             ({"!!": ["x"]}, True), ({"and": [True, 0, 1]}, 0), ({"or": [0, "", "a"]}, "a"),
             ({"cat": ["a", 1]}, "a1"), ({"in": ["ub", "kube"]}, True), ({"var": ["a.b"]}, 7),
             ({"var": ["a.c", "dflt"]}, "dflt"), ({"starts_with": [{"var": "s"}, "ku"]}, True)]
    data = {"a": {"b": 7}, "s": "kube"}
    assert_that([apply(rule, data) for rule, _ in cases], equal_to([want for _, want in cases]))
