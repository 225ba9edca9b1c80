"""The LLM-backed L1 writers against a scripted OpenAI-compatible stand-in on 127.0.0.1:
realistic replies, replies that need repair, citations outside the batch, and replies that never
validate, which must fail the build and leave the previous profile in place."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from lm.base import StructuredOutputError
from memory.models import Visibility
from memory.profile import Profile, ProfileBuilder, Scope
from memory.profile.llm_writers import (
    MAX_FACTS,
    LLMBioWriter,
    LLMFactExtractor,
    LLMTopicNamer,
    fact_batch_reply,
)
from memory.store import MemoryStore
from tests.lm.scripted_server import (
    RecordedRequest,
    ScriptedReply,
    ScriptedServer,
    chat_reply,
)
from tests.memory.profile.corpus import OWNER, Line, ingest, themed
from twin.config import LLMSettings, load_settings
from twin.llm_factory import build_llm
from twin.profile_writers import profile_builder, profile_writers

SCHEMAS = ("TopicNameReply", "FactBatchReply", "BioReply")
# Embedding runs torch single-threaded (see `torch_single_thread`).
pytestmark = pytest.mark.usefixtures("torch_single_thread")


Reply = ScriptedReply | Callable[[str], ScriptedReply]


class RoutedServer(ScriptedServer):
    """Answers each request from the script of the schema it asks for (the schema's title is
    in the prompt), so a test need not know in which order a build asks. A scripted reply may
    be a function of the prompt."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, list[Reply]] = {}

    def route(self, schema: str, *replies: Reply) -> None:
        with self._lock:
            self.routes[schema] = list(replies)

    def record(self, request: RecordedRequest) -> ScriptedReply:
        prompt = json.dumps(request.payload.get("messages", []), ensure_ascii=False)
        schema = next(s for s in SCHEMAS if s in prompt)
        with self._lock:
            self.requests.append(request)
            replies = self.routes[schema]
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return reply(prompt) if callable(reply) else reply

    def prompts(self, schema: str) -> list[str]:
        texts = [
            json.dumps(r.payload.get("messages", []), ensure_ascii=False) for r in self.requests
        ]
        return [t for t in texts if schema in t]

    def asked(self, schema: str) -> int:
        return len(self.prompts(schema))


@pytest.fixture
def server() -> Iterator[RoutedServer]:
    routed = RoutedServer()
    routed.start()
    yield routed
    routed.stop()


def llm_builder(store: MemoryStore, server: RoutedServer, batch_size: int = 30) -> ProfileBuilder:
    llm = build_llm(
        LLMSettings(backend="openai", base_url=server.url, model="stand-in", max_retries=1)
    )
    return ProfileBuilder(
        store,
        OWNER,
        namer=LLMTopicNamer(llm),
        extractor=LLMFactExtractor(llm, batch_size=batch_size),
        bio_writer=LLMBioWriter(llm),
    )


TOPIC = json.dumps(
    {"name": "Bouldering at Vertigo", "description": "Evening climbing sessions and problems."}
)
FACTS = json.dumps(
    {
        "facts": [
            {
                "statement": "Iris Calder lives in Lisbon",
                "first_person": "I live in Lisbon",
                "attribute": "home_city",
                "value": "Lisbon",
                "exclusive": True,
                "memories": [25],
            },
            {
                "statement": "Iris Calder bakes sourdough bread",
                "first_person": "I bake sourdough bread",
                "attribute": "hobby",
                "value": "baking sourdough",
                "exclusive": False,
                "memories": [2, 99],
            },
            {
                "statement": "Iris Calder owns a boat",
                "first_person": "I own a boat",
                "attribute": "possession",
                "value": "boat",
                "memories": [99],
            },
        ]
    }
)
BIO = json.dumps(
    {
        "global_third_person": "Iris Calder lives in Lisbon, bakes sourdough and climbs.",
        "global_first_person": "I live in Lisbon, bake sourdough and climb.",
        "status_third_person": "Lately Iris has been bouldering and baking.",
        "status_first_person": "Lately I've been bouldering and baking.",
        "used_facts": [0, 1, 7],
    }
)


def persona_like_store(store: MemoryStore) -> list[str]:
    """24 themed messages and one saying where Iris lives (memory [25] of the batch)."""
    return ingest(store, [*themed(), Line("I live in Lisbon, up in Alfama", day=9)])


def test_llm_writers_name_topics_extract_facts_and_write_bios(
    store: MemoryStore, server: RoutedServer
) -> None:
    ids = persona_like_store(store)
    server.route("TopicNameReply", chat_reply(TOPIC))
    server.route("FactBatchReply", chat_reply(FACTS))
    server.route("BioReply", chat_reply(BIO))
    report = llm_builder(store, server).build()

    assert report.facts_total == 2  # the fact citing only a memory outside the batch is gone
    view = Profile(store).for_scope(Scope.OWNER)
    facts = {f.value: f for f in view.facts}
    assert facts["Lisbon"].statement == "Iris Calder lives in Lisbon"
    assert [m.id for m in facts["Lisbon"].sources] == [ids[24]]
    # [2, 99]: the real citation is kept, the invented one dropped
    assert [m.id for m in facts["baking sourdough"].sources] == [ids[1]]
    assert all(f.extractor.startswith("llm:openai:stand-in@") for f in view.facts)
    assert {t.label for t in view.topics} == {"Bouldering at Vertigo"}
    assert view.topics[0].description == "Evening climbing sessions and problems."
    assert view.bio("global", "third") == "Iris Calder lives in Lisbon, bakes sourdough and climbs."
    assert view.bio("status", "first") == "Lately I've been bouldering and baking."
    cited = store.conn.execute(
        "SELECT count(*) FROM profile_bio_facts bf JOIN profile_bios b ON b.id = bf.bio_id"
        " WHERE b.scope = 'owner' AND b.kind = 'global' AND b.person = 'third' AND bf.cited = 1"
    ).fetchone()[0]
    assert cited == 2  # fact 7 does not exist and is not recorded as cited
    # one call per topic of the owner and of friends, one extraction batch, one bio call per
    # scope that has anything
    friends = Profile(store).for_scope(Scope.FRIENDS)
    assert server.asked("TopicNameReply") == len(view.topics) + len(friends.topics) >= 6
    assert server.asked("FactBatchReply") == 1
    assert server.asked("BioReply") == 2  # nobody public: no call, the offline wording
    assert Profile(store).for_scope(Scope.PUBLIC).bio().startswith("Nothing about Iris Calder")


def test_the_model_only_sees_what_the_scope_may_see(
    store: MemoryStore, server: RoutedServer
) -> None:
    ingest(
        store,
        [
            *themed(),
            Line("The door code is 4071, I live in Alfama", visibility=Visibility.PRIVATE),
        ],
    )
    door_code = {
        "statement": "Iris Calder's door code is 4071",
        "first_person": "My door code is 4071",
        "attribute": "door_code",
        "value": "4071",
        "exclusive": True,
        "memories": [1],
    }

    def extract(prompt: str) -> ScriptedReply:
        # a model that reports the door code wherever it reads it
        return chat_reply(json.dumps({"facts": [door_code] if "4071" in prompt else []}))

    server.route("TopicNameReply", chat_reply(TOPIC))
    server.route("FactBatchReply", extract)
    server.route("BioReply", chat_reply(BIO))
    llm_builder(store, server).build()

    # the private memory is read in a batch of its own, so its fact cites only it
    batches = server.prompts("FactBatchReply")
    assert sum("4071" in b for b in batches) == 1
    assert all("Bouldering" not in b for b in batches if "4071" in b)
    (fact,) = Profile(store).for_scope(Scope.OWNER).facts
    assert fact.visibility is Visibility.PRIVATE
    # the owner's bio is written from it; the friends' bio never sees it
    owner_bio, friends_bio = server.prompts("BioReply")
    assert "4071" in owner_bio
    assert "4071" not in friends_bio
    owner_topics = len(Profile(store).for_scope(Scope.OWNER).topics)
    assert all("4071" not in p for p in server.prompts("TopicNameReply")[owner_topics:])


def test_replies_that_need_repair_are_repaired(store: MemoryStore, server: RoutedServer) -> None:
    persona_like_store(store)
    fenced = "Here you go:\n```json\n{'name': 'Sourdough baking', 'description': 'Bread',}\n```"
    server.route("TopicNameReply", chat_reply(fenced))
    server.route(
        "FactBatchReply",
        # cut off mid-way on the first try; the retry is valid (and has a trailing comma)
        chat_reply('{"facts": [{"statement": "Iris Calder lives in'),
        chat_reply(FACTS.replace("]}]}", "],},],}")),
    )
    server.route("BioReply", chat_reply(BIO))
    report = llm_builder(store, server).build()
    assert report.facts_total == 2
    assert server.asked("FactBatchReply") == 2  # the truncated reply was asked for again
    assert {t.label for t in Profile(store).for_scope(Scope.OWNER).topics} == {"Sourdough baking"}
    assert Profile(store).for_scope(Scope.OWNER).topics[0].description == "Bread"


def test_a_batch_whose_reply_is_cut_off_is_asked_again_in_halves(
    store: MemoryStore, server: RoutedServer
) -> None:
    ids = persona_like_store(store)
    lisbon = json.loads(FACTS)["facts"][0]

    def extract(prompt: str) -> ScriptedReply:
        # a model whose reply for more than six memories runs past max_tokens
        if "[7]" in prompt:
            return chat_reply('{"facts": [{"statement": "Iris Calder lives in')
        return chat_reply(json.dumps({"facts": [{**lisbon, "memories": [1]}]}))

    server.route("TopicNameReply", chat_reply(TOPIC))
    server.route("FactBatchReply", extract)
    server.route("BioReply", chat_reply(BIO))
    report = llm_builder(store, server).build()  # one batch of all 25 memories

    # 25 → 12 + 13 → 6 + 6 + 6 + 7 → 6 + 6 + 6 + 3 + 4: five halves answered, each citing
    # its own first memory
    answered = [p for p in server.prompts("FactBatchReply") if "[7]" not in p]
    assert len(answered) == 5
    cited = {m.id for f in Profile(store).for_scope(Scope.OWNER).facts for m in f.sources}
    assert cited == {ids[0], ids[6], ids[12], ids[18], ids[21]}
    assert report.facts_total >= 1


def test_a_batch_may_hold_three_facts_a_memory() -> None:
    fact = json.loads(FACTS)["facts"][0]
    one = fact_batch_reply(1)
    assert one.__name__ == "FactBatchReply"  # the title the model and the server see
    assert one.model_json_schema()["properties"]["facts"]["maxItems"] == 3
    assert len(one.model_validate({"facts": [fact] * 3}).facts) == 3
    with pytest.raises(ValueError, match="at most 3"):
        one.model_validate({"facts": [fact] * 4})
    assert fact_batch_reply(30).model_json_schema()["properties"]["facts"]["maxItems"] == MAX_FACTS


def test_a_reply_that_never_validates_fails_the_build_and_keeps_the_previous_profile(
    store: MemoryStore, server: RoutedServer
) -> None:
    persona_like_store(store)
    server.route("TopicNameReply", chat_reply(TOPIC))
    server.route("FactBatchReply", chat_reply(FACTS))
    server.route("BioReply", chat_reply(BIO))
    builder = llm_builder(store, server)
    builder.build()
    before = {s: Profile(store).for_scope(s).to_json() for s in Scope}
    builds = store.conn.execute("SELECT count(*) FROM profile_builds").fetchone()[0]

    # topics and facts succeed again, then every bio reply is missing its texts
    server.route("BioReply", chat_reply(json.dumps({"used_facts": [0]})))
    with pytest.raises(StructuredOutputError, match="BioReply"):
        builder.build(full=True)
    assert {s: Profile(store).for_scope(s).to_json() for s in Scope} == before
    last = store.conn.execute(
        "SELECT id, status, error FROM profile_builds ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert last[0] == builds + 1 and last[1] == "failed"
    assert "global_third_person" in last[2]


def test_settings_choose_the_writers(tmp_path, server: RoutedServer) -> None:
    offline = load_settings(tmp_path / "offline")
    assert not profile_writers(offline).uses_llm
    online = load_settings(
        tmp_path / "online",
        llm={"synthesizer": {"backend": "openai", "base_url": server.url, "model": "m"}},
    )
    writers = profile_writers(online)
    assert writers.uses_llm
    assert writers.extractor is not None
    assert writers.extractor.name == f"llm:openai:m@{server.url}"


def test_profile_builder_uses_the_owner_from_settings(tmp_path, store: MemoryStore) -> None:
    settings = load_settings(tmp_path, owner={"name": "Ada Moreira"})
    builder = profile_builder(store, settings)
    assert builder.owner_name == "Ada Moreira"
    assert builder.extractor.name == "offline-patterns"
