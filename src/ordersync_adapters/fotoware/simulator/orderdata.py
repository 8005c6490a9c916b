"""The FotoWeb simulator's custom order data: the site's order configuration (fields with
every documented attribute) and ``orderData``/``itemData`` checked against it."""

from __future__ import annotations

import math
import random
import re
import uuid
from typing import Any

from ordersync.simkit import HttpError as _HttpError


def _field(rng: random.Random, label: str, type_: str, **opts: Any) -> dict:
    """One order-config field with every documented attribute present."""
    return {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "type": type_,
            "label": label, "writable": opts.get("writable", True),
            "required": opts.get("required", False),
            "multiValue": opts.get("multiValue", False), "multiLine": opts.get("multiLine", False),
            "validation": {key: opts.get(key, [] if key == "values" else None) for key in (
                "maxLength", "max", "min", "regex", "taxonomy", "values", "helpText")}}


def build_order_config(seed: int) -> dict:
    """The site's custom order field configuration; field ids are fixed by ``seed``."""
    rng = random.Random(f"fotoware-order-config-{seed}")
    return {
        "orderFields": [
            _field(rng, "Project code", "text", required=True, regex=r"^[A-Z]{3}-\d{4}$",
                   maxLength=8, helpText="Three capitals, a dash and four digits: MKT-0042"),
            _field(rng, "Budget", "text", min=0, max=5000, helpText="Budget in EUR (0 to 5000)"),
            _field(rng, "Rush", "checkbox"),
            _field(rng, "Channel", "dropdown", values=["Print", "Web", "Broadcast"]),
            _field(rng, "Internal note", "text", writable=False, multiLine=True),
        ],
        "itemFields": [
            _field(rng, "Usage", "dropdown", multiValue=True,
                   values=["Editorial", "Advertising", "Social media", "Internal"],
                   taxonomy={"href": "/fotoweb/taxonomies/usage", "strict": False}),
            _field(rng, "Caption", "text", maxLength=40),
        ],
    }


def _validate_custom_data(data: Any, fields: dict[str, dict], where: str,
                          current: list[dict], check_required: bool) -> list[dict]:
    """Check ``orderData``/``itemData`` against the field configuration.

    Returns the normalised list or raises 400 with ``"<label>: <what is wrong>"``.
    ``current`` is the stored data, against which non-writable fields are compared.
    """
    if not isinstance(data, list):
        raise _HttpError(400, f'{where}: must be a list of {{"id", "value"}} objects')
    stored = {d["id"]: d["value"] for d in current}
    seen: dict[str, Any] = {}
    for i, entry in enumerate(data):
        if not (isinstance(entry, dict) and isinstance(entry.get("id"), str) and "value" in entry):
            raise _HttpError(400, f'{where}[{i}]: each entry needs an "id" and a "value"')
        field = fields.get(entry["id"])
        if field is None:
            raise _HttpError(400, f"{where}[{i}]: unknown field id {entry['id']!r}")
        label, value = field["label"], entry["value"]
        if entry["id"] in seen:
            raise _HttpError(400, f"{label}: given more than once")
        if not field["writable"] and stored.get(entry["id"], object()) != value:
            raise _HttpError(400, f"{label}: field is not writable")
        if field["type"] == "checkbox":
            if type(value) is not bool:
                raise _HttpError(400, f"{label}: value must be true or false")
        elif field["multiValue"]:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _HttpError(400, f"{label}: value must be a list of strings (multi-value)")
            for text in value:
                _check_text(label, text, field["validation"])
        elif isinstance(value, str):
            _check_text(label, value, field["validation"])
        else:
            raise _HttpError(400, f"{label}: value must be a string")
        seen[entry["id"]] = value
    if check_required:
        for field in fields.values():
            if field["required"] and seen.get(field["id"]) in (None, "", []):
                raise _HttpError(400, f"{field['label']}: a value is required")
    return [{"id": key, "value": value} for key, value in seen.items()]


def _check_text(label: str, text: str, rules: dict) -> None:
    """Validate one string: against the value list if any, else length, range and regex."""
    if rules["values"]:
        if text not in rules["values"]:
            raise _HttpError(400, f"{label}: {text!r} is not one of {', '.join(rules['values'])}")
        return  # "Other validation settings are ignored."
    if rules["maxLength"] is not None and len(text) > rules["maxLength"]:
        raise _HttpError(400, f"{label}: longer than {rules['maxLength']} characters")
    if rules["min"] is not None or rules["max"] is not None:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _HttpError(400, f"{label}: {text!r} is not a number")
        if rules["min"] is not None and number < rules["min"]:
            raise _HttpError(400, f"{label}: must be at least {rules['min']}")
        if rules["max"] is not None and number > rules["max"]:
            raise _HttpError(400, f"{label}: must be at most {rules['max']}")
    if rules["regex"] is not None and not re.search(rules["regex"], text):
        hint = f" ({rules['helpText']})" if rules["helpText"] else ""
        raise _HttpError(400, f"{label}: {text!r} does not match {rules['regex']}{hint}")
