"""Who is asking, and what they may see.

Every memory has a visibility (private, friends, public), and a friend's own conversation with the
twin is shared with that friend alone. An `Audience` turns "who is asking" into the filter that
retrieval and training apply, so the rule lives in one place.

Every `twin` command loads this module (the training command's options name its enums), so the
store and retrieval are imported where the filter and the guard use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from memory.models import AskedBy, Visibility

if TYPE_CHECKING:
    import numpy as np

    from memory.store import MemoryFilter, MemoryStore


class AudienceKind(StrEnum):
    OWNER = "owner"
    FRIEND = "friend"
    PUBLIC = "public"


class ModelSide(StrEnum):
    """Which of a version's two models: the owner's, trained on all memory, or the shared one,
    trained only on what friends may see, which answers everyone else."""

    OWNER = "owner"
    SHARED = "shared"

    @classmethod
    def answering(cls, kind: AudienceKind) -> ModelSide:
        """The model that answers an audience."""
        return cls.OWNER if kind == AudienceKind.OWNER else cls.SHARED

    @property
    def audience(self) -> Audience:
        """Whose view of memory this model is trained on."""
        return Audience.owner() if self is ModelSide.OWNER else Audience.friend()


_VISIBLE: dict[AudienceKind, tuple[Visibility, ...]] = {
    AudienceKind.OWNER: (Visibility.PRIVATE, Visibility.FRIENDS, Visibility.PUBLIC),
    AudienceKind.FRIEND: (Visibility.FRIENDS, Visibility.PUBLIC),
    AudienceKind.PUBLIC: (Visibility.PUBLIC,),
}


@dataclass(frozen=True)
class Audience:
    """The asker: the owner, a friend (with their platform id), or anyone."""

    kind: AudienceKind
    principal: str | None = None

    @classmethod
    def owner(cls) -> Audience:
        return cls(AudienceKind.OWNER)

    @classmethod
    def friend(cls, principal: str | None = None) -> Audience:
        return cls(AudienceKind.FRIEND, principal)

    @classmethod
    def public(cls, principal: str | None = None) -> Audience:
        return cls(AudienceKind.PUBLIC, principal)

    @classmethod
    def parse(cls, name: str, principal: str | None = None) -> Audience:
        """An audience by name: "owner", "friend" or "public"."""
        try:
            return cls(AudienceKind(name.strip().lower()), principal)
        except ValueError:
            raise ValueError(f"unknown audience {name!r}; use owner, friend or public") from None

    @property
    def is_owner(self) -> bool:
        return self.kind == AudienceKind.OWNER

    @property
    def asker(self) -> AskedBy:
        """Who retrieval is told is asking (it reads "I", "you" and "she" by it): the owner, or
        anyone else. What may be seen is the audience's filter alone."""
        return AskedBy.OWNER if self.is_owner else AskedBy.OTHER

    @property
    def visibilities(self) -> tuple[Visibility, ...]:
        return _VISIBLE[self.kind]

    def may_see(self, visibility: Visibility, shared_with: str | None = None) -> bool:
        """Whether this audience may see a memory (or a claim) with this visibility."""
        if self.is_owner:
            return True
        if shared_with is not None:
            return shared_with == self.principal
        return visibility in self.visibilities

    def memory_filter(self, **narrowing: Any) -> MemoryFilter:
        """The filter for what this audience may see, narrowed further by `narrowing` (since,
        until, sources, speakers, thread)."""
        from memory.store import MemoryFilter

        base = MemoryFilter(
            visibilities=self.visibilities,
            principal=self.principal,
            see_all_shared=self.is_owner,
        )
        return replace(base, **narrowing)


@dataclass(frozen=True)
class GuardVerdict:
    """Whether a reply may be sent, and if not, why (for the log, never for the asker)."""

    allowed: bool
    reason: str = ""
    memory_id: str | None = None


_TOKEN = re.compile(r"\w+(?:[.,]\d+)*", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass
class _HiddenIndex:
    """What one audience must not learn: distinctive terms and phrases of the memories it may
    not see, and their vectors."""

    stamp: tuple[int, int]
    terms: dict[str, str]  # term → id of a hidden memory holding it
    shingles: dict[tuple[str, ...], str]
    ids: list[str]
    vectors: np.ndarray


class OutputGuard:
    """Checks a reply to a third party against the memories they may not see, before it is sent.

    Retrieval already keeps private memories out of a third party's prompt and the model that
    answers them never trained on one, so this is the last line: a reply is blocked when it
    contains a distinctive term (a name, a number) or a run of words that appears only in hidden
    memories, or when a sentence of it is closer to a hidden memory than to anything the
    audience may see.
    """

    SHINGLE = 4

    def __init__(self, store: MemoryStore, similarity: float = 0.8) -> None:
        from memory.retrieve import Retriever

        self.store = store
        self.similarity = similarity
        self._retriever = Retriever(store)
        self._cache: dict[AudienceKind, _HiddenIndex] = {}

    def check(self, text: str, audience: Audience) -> GuardVerdict:
        if audience.is_owner or not text.strip():
            return GuardVerdict(True)
        index = self._index(audience)
        if not index.ids:
            return GuardVerdict(True)
        tokens = _tokens(text)
        for token in tokens:
            if token in index.terms:
                return GuardVerdict(
                    False, f"names {token!r} from a hidden memory", index.terms[token]
                )
        for i in range(len(tokens) - self.SHINGLE + 1):
            gram = tuple(tokens[i : i + self.SHINGLE])
            if gram in index.shingles:
                return GuardVerdict(False, f"repeats {' '.join(gram)!r}", index.shingles[gram])
        return self._semantic(text, audience, index)

    def _semantic(self, text: str, audience: Audience, index: _HiddenIndex) -> GuardVerdict:
        sentences = [s for s in _SENTENCE.split(text) if len(s.split()) >= 3]
        if not sentences:
            return GuardVerdict(True)
        vectors = self.store.embedder.embed(sentences)
        sims = vectors @ index.vectors.T
        for row, sentence_vector in enumerate(vectors):
            best = int(sims[row].argmax())
            if sims[row, best] < self.similarity:
                continue
            visible = self._retriever.nearest(sentence_vector, 1, audience.memory_filter())
            if not visible or visible[0].similarity < sims[row, best]:
                return GuardVerdict(
                    False, f"close to a hidden memory ({sims[row, best]:.2f})", index.ids[best]
                )
        return GuardVerdict(True)

    def _index(self, audience: Audience) -> _HiddenIndex:
        """What `audience` must not learn. Conversations with the twin (memories shared with
        one person) count on neither side: they are never in another person's context or in
        the shared model's training data, and counting them would block a friend's reply for
        echoing what another friend was told. Being independent of them also means a bot's
        new messages do not force a rebuild."""
        from memory.retrieve import STOPWORDS

        current = self.store.stamp(conversations=False)
        cached = self._cache.get(audience.kind)
        if cached is not None and cached.stamp == current:
            return cached
        everything = [m for m in self.store.iter_memories(order="rowid") if m.shared_with is None]
        common = {w for m in everything for w in _TOKEN.findall(m.text) if w.islower()}
        hidden = [m for m in everything if not audience.may_see(m.visibility)]
        seen_words: set[str] = set()
        seen_shingles: set[tuple[str, ...]] = set()
        for memory in everything:
            if audience.may_see(memory.visibility):
                tokens = _tokens(memory.text)
                seen_words.update(tokens)
                seen_shingles.update(_shingles(tokens, self.SHINGLE))
        terms: dict[str, str] = {}
        shingles: dict[tuple[str, ...], str] = {}
        for memory in hidden:
            for word in _distinctive(memory.text, common):
                if word not in seen_words:
                    terms.setdefault(word, memory.id)
            for gram in _shingles(_tokens(memory.text), self.SHINGLE):
                if gram not in seen_shingles and not set(gram) <= STOPWORDS:
                    shingles.setdefault(gram, memory.id)
        ids = [m.id for m in hidden]
        index = _HiddenIndex(current, terms, shingles, ids, self.store.vectors(ids))
        self._cache[audience.kind] = index
        return index


def _tokens(text: str) -> list[str]:
    """Lower-case words, with digit groups joined (18,000 and 18.000 are both 18000)."""
    return [re.sub(r"(?<=\d)[.,](?=\d)", "", t).casefold() for t in _TOKEN.findall(text)]


def _distinctive(text: str, common: set[str]) -> set[str]:
    """The words of `text` that identify something: numbers of three digits or more, and names:
    capitalised words that never occur in lower case in memory (so "Monterey" and "Alves" count,
    a sentence-initial "Money" does not)."""
    out = set()
    for raw in _TOKEN.findall(text):
        word = re.sub(r"(?<=\d)[.,](?=\d)", "", raw)
        is_number = word.isdigit() and len(word) >= 3
        is_name = word[:1].isupper() and len(word) >= 3 and word.casefold() not in common
        if is_number or is_name:
            out.add(word.casefold())
    return out


def _shingles(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}
