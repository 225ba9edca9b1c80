"""Audiences: what the owner, a friend and the public may see."""

from __future__ import annotations

import pytest

from memory.models import Visibility
from twin.privacy import Audience, AudienceKind


def test_owner_sees_everything() -> None:
    owner = Audience.owner()
    assert all(owner.may_see(v) for v in Visibility)
    assert owner.may_see(Visibility.PRIVATE, shared_with="telegram:1")
    flt = owner.memory_filter()
    assert flt.see_all_shared and set(flt.visibilities) == set(Visibility)


def test_friend_sees_friends_and_public_and_their_own_conversation() -> None:
    ana = Audience.friend("telegram:1")
    assert not ana.may_see(Visibility.PRIVATE)
    assert ana.may_see(Visibility.FRIENDS) and ana.may_see(Visibility.PUBLIC)
    assert ana.may_see(Visibility.PRIVATE, shared_with="telegram:1")
    assert not ana.may_see(Visibility.FRIENDS, shared_with="telegram:2")
    flt = ana.memory_filter(thread="t")
    assert flt.principal == "telegram:1" and not flt.see_all_shared and flt.thread == "t"


def test_public_sees_public_only() -> None:
    anyone = Audience.public()
    assert [v for v in Visibility if anyone.may_see(v)] == [Visibility.PUBLIC]


def test_parse() -> None:
    assert Audience.parse(" Friend ").kind == AudienceKind.FRIEND
    with pytest.raises(ValueError, match="unknown audience"):
        Audience.parse("boss")
