"""A reply's JSON schema as a model is shown it, and as a grammar engine is given it.

The model reads the schema in its prompt. Pydantic puts each model class's docstring in it
as the object's `description`; those are written for developers, and a small model copies
them into its answer (SmolLM2-135M named every topic "A topic's name and a one-sentence
description."), so the prompt leaves them out. Field descriptions, written for the model, stay.

Constrained decoding (llama.cpp in-process, and the servers that build a grammar from a
`response_format`) turns length and count bounds into nested optional repetitions:
`maxLength: 1500` becomes 1500 nested `(char (char …)?)?` groups. llama.cpp refuses such a
grammar beyond about a thousand ("number of rules that are going to be repeated … exceeds
sane defaults"), and llama-cpp-python then crashes. So the schema given to an engine keeps
only the bounds it can take; the pydantic model still checks every bound after parsing, and
a reply that breaks one is asked for again with the error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# Bounds up to this stay. llama.cpp takes one of up to about a thousand (measured: 1000 yes,
# 1100 no); under a grammar, a bound makes a weak model close its strings and lists where it
# would otherwise write until max_tokens, and the reply then validates.
GRAMMAR_MAX_BOUND = 500
BOUND_KEYWORDS = frozenset(
    ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
)
# Keywords whose value maps names to schemas (the names are not keywords)...
_SCHEMA_MAPS = frozenset(("properties", "patternProperties", "$defs", "definitions"))
# ...and keywords whose value is data, not a schema.
_DATA = frozenset(("enum", "const", "default", "examples", "required"))
# A regex repetition count: {n}, {n,} or {n,m}.
_QUANTIFIER = re.compile(r"\{(\d+)(?:,(\d*))?\}")

# Whether to leave out a keyword, given the schema it is in, the keyword and its value.
Drop = Callable[[dict[str, Any], str, Any], bool]


def prompt_schema(json_schema: dict[str, Any]) -> dict[str, Any]:
    """`json_schema` without the descriptions of objects (the classes' docstrings); the
    descriptions of fields stay. The input is not changed."""
    return _walk(json_schema, _drop_object_description)


def grammar_schema(json_schema: dict[str, Any]) -> dict[str, Any]:
    """`json_schema` without what a grammar engine would expand into big repetitions.

    Length and count bounds above `GRAMMAR_MAX_BOUND` go, and so does a `pattern` that
    repeats something more often than that; everything else (types, enums, required
    fields, references, small bounds) is kept. The input is not changed.
    """
    return _walk(json_schema, _drop_big_bounds)


def _drop_object_description(schema: dict[str, Any], key: str, value: Any) -> bool:
    return key == "description" and "properties" in schema


def _drop_big_bounds(schema: dict[str, Any], key: str, value: Any) -> bool:
    if key in BOUND_KEYWORDS:
        return isinstance(value, int) and value > GRAMMAR_MAX_BOUND
    return key == "pattern" and isinstance(value, str) and _repeats_much(value)


def _walk(node: Any, drop: Drop) -> Any:
    """A copy of the schema `node` without the keywords `drop(schema, key, value)` picks."""
    if isinstance(node, list):
        return [_walk(item, drop) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if drop(node, key, value):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _walk(sub, drop) for name, sub in value.items()}
        elif key in _DATA:
            out[key] = value
        else:
            out[key] = _walk(value, drop)
    return out


def _repeats_much(pattern: str) -> bool:
    """Whether a regex has a repetition count above `GRAMMAR_MAX_BOUND`."""
    return any(
        int(number) > GRAMMAR_MAX_BOUND
        for match in _QUANTIFIER.finditer(pattern)
        for number in match.groups()
        if number
    )
