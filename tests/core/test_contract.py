"""One validation for every front door: raw values -> typed, checked values, with errors that
name the parameter (never a command-line flag)."""

from __future__ import annotations

import pytest

from ordersync.contract import ActionSpec, Param, ParamType, identify_by, validate
from ordersync.errors import ParameterError

SPEC = ActionSpec(
    "paint", "paint an order", (
        Param("colour", required=True, choices=("red", "blue")),
        Param("coats", ParamType.INT, default=1, minimum=1),
        Param("gloss", ParamType.FLOAT, minimum=0),
        Param("dry", ParamType.BOOL),
        Param("photo", ParamType.PATH),
        Param("recipe", ParamType.FILE),
        Param("labels", ParamType.ASSIGNMENTS, repeatable=True),
        Param("item_labels", ParamType.ITEM_ASSIGNMENTS, repeatable=True),
        Param("url", repeatable=True),
    ),
    one_of=(("photo", "url"),),
)


def test_values_from_the_command_line_become_typed():
    checked = validate(SPEC, {
        "colour": "red", "coats": "3", "gloss": "0.5", "dry": "yes", "url": ["u1", "u2"],
        "recipe": {"base": "oil"}, "labels": ["a=1", "b=2", "a=3"],
        "item_labels": ["0:x=1", "2:y=2"]})
    assert checked == {
        "colour": "red", "coats": 3, "gloss": 0.5, "dry": True, "url": ["u1", "u2"],
        "recipe": {"base": "oil"}, "labels": {"a": ["1", "3"], "b": "2"},
        "item_labels": {0: {"x": "1"}, 2: {"y": "2"}}}


def test_values_from_json_keep_their_types_and_defaults_apply():
    checked = validate(SPEC, {"colour": "blue", "dry": False, "photo": "/tmp/p.jpg",
                              "labels": {"a": "1"}, "coats": None})
    assert checked == {"colour": "blue", "coats": 1, "dry": False, "photo": "/tmp/p.jpg",
                       "labels": {"a": "1"}}


@pytest.mark.parametrize(("values", "param", "detail"), [
    ({}, "colour", "is required"),
    ({"colour": "green", "url": "u"}, "colour", "'green' is not one of red, blue"),
    ({"colour": "red", "coats": "0", "url": "u"}, "coats", "must be at least 1, got 0"),
    ({"colour": "red", "coats": "two", "url": "u"}, "coats", "'two' is not a whole number"),
    ({"colour": "red", "coats": 1.5, "url": "u"}, "coats", "1.5 is not a whole number"),
    ({"colour": "red", "coats": True, "url": "u"}, "coats", "True is not a whole number"),
    ({"colour": "red", "coats": str(2**63), "url": "u"}, "coats", f"{2**63} is out of range"),
    ({"colour": "red", "gloss": "shiny", "url": "u"}, "gloss", "'shiny' is not a number"),
    ({"colour": "red", "dry": "maybe", "url": "u"}, "dry", "takes true or false, got 'maybe'"),
    ({"colour": "red", "recipe": [1], "url": "u"}, "recipe", "expected an object of fields"),
    ({"colour": "red", "labels": ["nothing"], "url": "u"}, "labels",
     "'nothing' is not NAME=VALUE"),
    ({"colour": "red", "item_labels": ["x:a=1"], "url": "u"}, "item_labels",
     "'x:a=1' is not N:NAME=VALUE"),
    ({"colour": ["red"], "url": "u"}, "colour", "must be text, got ['red']"),
    ({"colour": "red"}, "photo", "give exactly one of photo, url"),
    ({"colour": "red", "photo": "p", "url": "u"}, "photo",
     "give exactly one of photo, url (got photo, url)"),
    ({"colour": "red", "url": "u", "size": 3}, "size", "paint takes no such parameter"),
])
def test_wrong_values_name_the_parameter(values, param, detail):
    with pytest.raises(ParameterError) as caught:
        validate(SPEC, values)
    assert (caught.value.param, caught.value.detail) == (param, detail)
    assert str(caught.value) == f"{param}: {detail}"
    assert "--" not in str(caught.value)


def test_a_declaration_builds_the_kind_and_parameters_it_queues():
    plain = ActionSpec("wipe", "wipe it")
    shaped = ActionSpec("add", "add things", (Param("thing", repeatable=True),),
                        build=lambda v: ("add_many" if len(v["thing"]) > 1 else "add", v))
    assert plain.queue_as({}) == ("wipe", {}) and plain.path == ("wipe",)
    assert shaped.queue_as({"thing": ["a", "b"]})[0] == "add_many"
    assert shaped.queue_as({"thing": ["a"]})[0] == "add"


@pytest.mark.parametrize("raw, found", [
    ({"id": 1042}, ("1042", "orders/1042")),
    ({"id": "R-7"}, ("R-7", "orders/R-7")),
    ({"id": ""}, None), ({"id": True}, None), ({"id": {"a": 1}}, None), ({}, None),
])
def test_identify_by_names_an_order_by_its_id_key_and_url(raw, found):
    assert identify_by("id", "orders/{id}")(raw) == found
