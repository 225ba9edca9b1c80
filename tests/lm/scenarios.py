"""What the LLM tests ask, and what the memorising chat model was taught to answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from lm.base import ChatMessage, structured_prompt


class Mood(BaseModel):
    """The owner's mood; the chat model answers it with broken JSON that repair must fix."""

    mood: Literal["calm", "busy", "tired"]
    energy: Literal["low", "high"]
    tags: list[str] = Field(max_length=3)


class Weather(BaseModel):
    """Nothing the chat model says ever matches this."""

    sky: Literal["sunny", "rainy"]
    celsius: int


class Snapshot(BaseModel):
    """Bounded in every field (enums, short strings, short arrays), so that generation under
    llama.cpp's JSON-schema grammar always terminates, even for a random model."""

    mood: Literal["calm", "busy", "tired"]
    outdoors: bool
    note: str = Field(max_length=16)
    tags: list[Literal["tea", "garden", "work"]] = Field(max_length=3)


SYSTEM = ChatMessage("system", "You are Ada's twin.")
MORNING = [ChatMessage("user", "What do I drink in the morning?")]
MORNING_REPLY = "Green tea, always. Mint tea after dinner."
MOOD = [SYSTEM, ChatMessage("user", "How do I feel today?")]
MOOD_REPLY = "Sure! ```json\n{'mood': 'calm', 'energy': 'high', 'tags': ['tea', 'garden',],}\n```"
WEATHER = [ChatMessage("user", "What is the weather like?")]
WEATHER_REPLY = "I would rather talk about tea."


def taught_conversations() -> list[list[dict[str, str]]]:
    """The chats the tiny chat model memorises, as the backends will send them."""
    chats = [
        (MORNING, MORNING_REPLY),
        (structured_prompt(MOOD, Mood.model_json_schema()), MOOD_REPLY),
        (structured_prompt(WEATHER, Weather.model_json_schema()), WEATHER_REPLY),
    ]
    return [
        [{"role": m.role, "content": m.content} for m in (*prompt, ChatMessage("assistant", reply))]
        for prompt, reply in chats
    ]
