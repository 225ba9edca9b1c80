"""Who is writing to the bot, and which audience the answer is for.

The audience comes from the platform's user id and the kind of chat, never from what a message
says: "I am the owner" in a message changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from twin.config import BotSettings, OwnerSettings
from twin.privacy import Audience


class Role(StrEnum):
    OWNER = "owner"
    FRIEND = "friend"
    STRANGER = "stranger"


@dataclass(frozen=True)
class Asker:
    """The person behind a message: their platform, id, display name and role."""

    platform: str
    user_id: str
    name: str
    role: Role

    @property
    def principal(self) -> str:
        """How memory names them: a friend's conversation is shared with this principal."""
        return f"{self.platform}:{self.user_id}"

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


def space_principal(platform: str, chat_id: str) -> str:
    """The principal of a group chat or channel: what is said there is shared with the space."""
    return f"{platform}:chat:{chat_id}"


class Directory:
    """The owner's accounts and the friends' allowlist, per platform, from the settings.

    Ids are compared as the platform gives them; an id written the way Telegram Desktop exports
    name users ("user123456789") matches the bare id too.
    """

    def __init__(self, owner: OwnerSettings, bots: BotSettings) -> None:
        self.owner = {p: _normalised(ids) for p, ids in owner.ids.items()}
        self.friends = {p: _normalised(ids) for p, ids in bots.friends.items()}
        self.strangers = bots.strangers

    def asker(self, platform: str, user_id: str, name: str) -> Asker:
        """Who `user_id` on `platform` is to the twin."""
        uid = _bare(user_id)
        if uid in self.owner.get(platform, set()):
            role = Role.OWNER
        elif uid in self.friends.get(platform, set()):
            role = Role.FRIEND
        else:
            role = Role.STRANGER
        return Asker(platform, str(user_id), name or str(user_id), role)

    def audience(self, asker: Asker, *, private: bool, chat_id: str) -> Audience | None:
        """The audience an answer to `asker` is for, or None when the bot should not answer.

        In a one-to-one chat the owner gets everything, a friend what friends may see plus
        their own conversation. In a shared space (a channel) the readers are more than the
        asker, so even the owner gets the friends' view, and the conversation belongs to the
        space. Strangers get public memories, or nothing, as configured.
        """
        principal = asker.principal if private else space_principal(asker.platform, chat_id)
        if asker.role == Role.STRANGER:
            return Audience.public(principal) if self.strangers == "public" else None
        if asker.role == Role.OWNER and private:
            return Audience.owner()
        return Audience.friend(principal)


def _bare(user_id: str) -> str:
    text = str(user_id).strip()
    return text[4:] if text.startswith("user") and text[4:].isdigit() else text


def _normalised(ids: list[str]) -> set[str]:
    return {_bare(i) for i in ids}
