"""Custom order data checked against the site's field configuration, before any request.

Pure functions: the field configuration (``GET order.config``) and the order's current
data come in, normalised ``{field id: value}`` or an ActionRefused naming the field's label
and the rule it broke come out. FotoWeb would answer such a request with a bare 400; saying
which field and which rule, when the action is queued, is kinder to the person who typed it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ordersync.errors import ActionRefused

TRUE_WORDS = {"true", "yes", "1", "on"}
FALSE_WORDS = {"false", "no", "0", "off"}


def resolve(fields: list[dict], name: str, scope: str) -> dict:
    """The field called ``name``: its id, or its label in any case."""
    for field in fields:
        if field.get("id") == name:
            return field
    lowered = name.casefold()
    matches = [f for f in fields if str(f.get("label", "")).casefold() == lowered]
    if len(matches) == 1:
        return matches[0]
    labels = ", ".join(repr(f.get("label")) for f in fields) or "none"
    raise ActionRefused(f"unknown {scope} field {name!r}; the site's {scope} fields: {labels}")


def check(fields: list[dict], values: Mapping[str, Any], scope: str) -> dict[str, Any]:
    """Validate values given by id or label; returns ``{field id: value}``."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        field = resolve(fields, name, scope)
        label = field.get("label") or field["id"]
        if field["id"] in checked:
            raise ActionRefused(f"{label}: given more than once")
        if not field.get("writable", True):
            raise ActionRefused(f"{label}: the field is not writable")
        if field.get("required") and value in ("", []):
            raise ActionRefused(f"{label}: a value is required ({scope} field)")
        checked[field["id"]] = _value(field, label, value)
    return checked


def check_required(fields: list[dict], merged: Mapping[str, Any], scope: str) -> None:
    """Every required field has a value once the change is merged into the current data."""
    for field in fields:
        if field.get("required") and merged.get(field["id"]) in (None, "", []):
            raise ActionRefused(f"{field.get('label') or field['id']}: a value is required"
                                f" ({scope} field)")


def _value(field: dict, label: str, value: Any) -> Any:
    kind = field.get("type")
    if kind == "checkbox":
        return _boolean(label, value)
    values = value if isinstance(value, list) else [value]
    if not field.get("multiValue") and len(values) != 1:
        raise ActionRefused(f"{label}: takes one value, got {len(values)}")
    texts = []
    for item in values:
        if not isinstance(item, str):
            raise ActionRefused(f"{label}: value must be text, got {item!r}")
        _text_rules(label, item, field.get("validation") or {})
        texts.append(item)
    return texts if field.get("multiValue") else texts[0]


def _boolean(label: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ActionRefused(f"{label}: a checkbox takes true or false, got {value!r}")


def _text_rules(label: str, text: str, rules: Mapping[str, Any]) -> None:
    allowed = rules.get("values") or []
    if allowed:
        if text not in allowed:
            raise ActionRefused(f"{label}: {text!r} is not one of {', '.join(allowed)}")
        return  # the docs: with a value list, "other validation settings are ignored"
    hint = f" ({rules['helpText']})" if rules.get("helpText") else ""
    if rules.get("maxLength") is not None and len(text) > rules["maxLength"]:
        raise ActionRefused(f"{label}: {len(text)} characters, at most {rules['maxLength']}"
                            f" allowed{hint}")
    if rules.get("min") is not None or rules.get("max") is not None:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ActionRefused(f"{label}: {text!r} is not a number{hint}")
        if rules.get("min") is not None and number < rules["min"]:
            raise ActionRefused(f"{label}: {text} is below the minimum {rules['min']}{hint}")
        if rules.get("max") is not None and number > rules["max"]:
            raise ActionRefused(f"{label}: {text} is above the maximum {rules['max']}{hint}")
    if rules.get("regex"):
        try:
            matched = re.search(rules["regex"], text)
        except re.error:
            return  # a pattern Python cannot read: leave the judgement to FotoWeb
        if not matched:
            raise ActionRefused(f"{label}: {text!r} does not match {rules['regex']}{hint}")


def as_dict(entries: Any) -> dict[str, Any]:
    """``[{"id", "value"}, ...]`` as ``{id: value}`` (entries without an id are dropped)."""
    if not isinstance(entries, list):
        return {}
    return {e["id"]: e.get("value") for e in entries if isinstance(e, dict) and "id" in e}


def as_list(values: Mapping[str, Any]) -> list[dict]:
    return [{"id": key, "value": value} for key, value in values.items()]
