"""JSON Schema validation of the messages Hotline exchanges (files in `schemas/`)."""

from __future__ import annotations

import json
from functools import cache

from jsonschema import Draft202012Validator

from hotline import SCHEMA_DIR


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text()))


def problems(name: str, message: object) -> list[str]:
    """Every way `message` breaks schema `name`, as readable sentences (empty when valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator(name).iter_errors(message)
    ]
