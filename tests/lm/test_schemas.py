"""The schema a model is shown (no class docstrings) and the one a grammar engine gets (small
bounds kept, big ones and big regex counts gone)."""

from __future__ import annotations

import copy

from pydantic import BaseModel, Field

from lm.schemas import GRAMMAR_MAX_BOUND, grammar_schema, prompt_schema


class Item(BaseModel):
    """Developer notes on Item: the model must not read these."""

    tag: str = Field(min_length=2, max_length=40)
    note: str = Field(default="", max_length=1500)


class Reply(BaseModel):
    """Developer notes on Reply."""

    items: list[Item] = Field(min_length=1, max_length=1000)
    ids: list[int] = Field(default_factory=list, max_length=10)
    code: str = Field(pattern=r"^[A-Z]{2}-\d{1,900}$")
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*(:[a-z]{2,8})?$")


def test_big_bounds_go_and_small_ones_stay() -> None:
    schema = Reply.model_json_schema()
    before = copy.deepcopy(schema)
    out = grammar_schema(schema)
    assert schema == before  # the input is left alone

    items = out["properties"]["items"]
    assert items["minItems"] == 1 and "maxItems" not in items
    assert out["properties"]["ids"]["maxItems"] == 10
    item = out["$defs"]["Item"]["properties"]
    assert item["tag"] == {"maxLength": 40, "minLength": 2, "title": "Tag", "type": "string"}
    assert item["note"] == {"default": "", "title": "Note", "type": "string"}
    # a pattern repeating something 900 times goes; one with small counts stays
    assert "pattern" not in out["properties"]["code"]
    assert out["properties"]["key"]["pattern"] == r"^[a-z][a-z0-9_]*(:[a-z]{2,8})?$"
    # structure, references and required fields are untouched
    assert out["required"] == schema["required"]
    assert items["items"] == {"$ref": "#/$defs/Item"}


def test_only_keywords_are_touched_not_names_or_data() -> None:
    big = GRAMMAR_MAX_BOUND + 1
    schema = {
        "type": "object",
        "properties": {
            "maxLength": {"type": "integer", "default": {"maxLength": big}},
            "choice": {"enum": [{"minItems": big}]},
            "words": {"anyOf": [{"type": "string", "maxLength": big}, {"type": "null"}]},
        },
        "required": ["maxLength"],
        "maxProperties": big,
    }
    out = grammar_schema(schema)
    assert out["properties"]["maxLength"] == schema["properties"]["maxLength"]
    assert out["properties"]["choice"] == schema["properties"]["choice"]
    assert out["properties"]["words"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert "maxProperties" not in out
    assert grammar_schema({"maxLength": GRAMMAR_MAX_BOUND}) == {"maxLength": GRAMMAR_MAX_BOUND}


def test_the_prompt_schema_leaves_out_class_docstrings_and_keeps_field_descriptions() -> None:
    class Topic(BaseModel):
        """A topic's name and a one-sentence description."""

        name: str = Field(max_length=60, description="2 to 6 words")
        description: str = Field(default="", max_length=300)

    schema = Reply.model_json_schema()
    shown = prompt_schema(schema)
    assert "description" in schema and "description" in schema["$defs"]["Item"]
    assert "description" not in shown and "description" not in shown["$defs"]["Item"]
    assert "Developer notes" not in str(shown)
    assert shown["properties"] == schema["properties"]  # bounds and all

    topic = prompt_schema(Topic.model_json_schema())
    assert "description" not in topic
    assert topic["properties"]["name"]["description"] == "2 to 6 words"
    assert topic["properties"]["description"]["maxLength"] == 300  # a field called so stays
