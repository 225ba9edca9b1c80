"""The twin as an MCP server: tools, resources and prompts over one `Twin`.

A thin layer: every tool calls the Twin service (which does retrieval, privacy, the model and the
output guard) for the audience of whoever is calling (`mcp_server.access`), and returns a
pydantic model, so clients get an `outputSchema`, structured content and the same JSON as text.
Expected failures (an empty question, an unknown memory id, a refused permission, a broken
model) come back as MCP tool errors with a message; the server keeps serving.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp_types import ToolAnnotations
from pydantic import Field

from mcp_server.access import (
    AudienceMiddleware,
    Transport,
    current_audience,
    current_caller,
    narrower,
)
from mcp_server.profile import ProfileReader, bio_markdown, facts_of, stored_profile, topics_of
from mcp_server.schemas import (
    AudienceName,
    Critique,
    EnhancedRequest,
    Forgotten,
    FoundMemory,
    Remembered,
    SearchResults,
    TwinAnswer,
)
from mcp_server.status import twin_status
from memory.models import Visibility
from twin.llm import LLMError
from twin.privacy import Audience, AudienceKind
from twin.registry import RegistryError
from twin.service import Twin

# Tools that act with the owner's full memory or change it: refused to (and hidden from) friends.
OWNER_ONLY = frozenset({"enhance_request", "critique_reply", "remember", "forget"})
MAX_RESULTS = 50

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


class ModelGates:
    """One asyncio lock per model, taken before a model call leaves the event loop.

    llama.cpp runs one generation at a time per model anyway; queueing here, rather than in
    worker threads blocked on the model's own lock, keeps the thread pool free for searches
    while several questions wait for the model.
    """

    def __init__(self) -> None:
        self._locks = {"owner": asyncio.Lock(), "shared": asyncio.Lock()}

    def lock(self, audience: Audience) -> asyncio.Lock:
        return self._locks["owner" if audience.is_owner else "shared"]


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn what the twin raises into MCP tool errors the calling model can act on."""
    try:
        yield
    except ToolError:
        raise
    except PermissionError as exc:
        raise ToolError(f"not allowed: {exc}") from exc
    except (ValueError, RegistryError) as exc:
        raise ToolError(str(exc)) from exc
    except LLMError as exc:
        raise ToolError(f"the twin's model failed: {exc}") from exc


def require_owner(tool: str) -> None:
    if not current_caller().is_owner:
        raise PermissionError(f"{tool} works on the owner's own memory and is for the owner only")


def _utc(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


def _package_version() -> str:
    try:
        return version("twin")
    except PackageNotFoundError:
        return "0"


def build_server(
    twin: Twin, transport: Transport = "stdio", profile: ProfileReader | None = None
) -> MCPServer:
    """An MCP server over `twin`. `transport` decides who callers are: over stdio the owner,
    over HTTP whoever the bearer token names (see `mcp_server.access`). `profile` reads L1
    (default: the profile built in the twin's store)."""
    owner = twin.owner
    read_profile = profile or stored_profile(twin.store, owner)
    gates = ModelGates()
    server: MCPServer = MCPServer(
        name="twin",
        title=f"{owner}'s twin",
        version=_package_version(),
        instructions=(
            f"This is the personal AI twin of {owner}: it answers from {owner}'s own notes and "
            f"chats (their memory) and speaks from {owner}'s perspective. Ask it what only "
            f"{owner}'s memory knows: their plans, preferences, history, people, constraints. "
            "ask_twin answers a question; search_memories returns the raw memories; "
            f"enhance_request adds {owner}'s context to a request before you send it to another "
            f"agent or expert; critique_reply checks another agent's answer against {owner}'s "
            "situation. When a tool says memory holds nothing on a question, do not guess."
        ),
        middleware=[AudienceMiddleware(transport, OWNER_ONLY)],
        log_level="WARNING",
    )

    # -- tools ---------------------------------------------------------------------------------

    @server.tool(
        title=f"Ask {owner}'s twin",
        description=(
            f"Ask {owner}'s twin a question that {owner}'s memory can answer (what they did, "
            "plan, like, decided, who they know, what was said in their chats). Returns the "
            "answer, the memories it relied on (id, source, time, snippet) and how similar the "
            "best one is to the question (search_similarity); "
            "`found` is false when memory holds nothing on the question. Phrase the question "
            f"as you would ask {owner} ('Where am I interviewing?' or 'Where is {owner} "
            "interviewing?' both work)."
        ),
        annotations=READ_ONLY,
    )
    async def ask_twin(
        question: Annotated[str, Field(description="The question, in plain language.")],
        audience: Annotated[
            AudienceName | None,
            Field(
                description="Answer as this audience would be answered: 'friend' or 'public' "
                "to preview what others are told. Default: whoever is connected. Never wider "
                "than that."
            ),
        ] = None,
    ) -> TwinAnswer:
        with tool_errors():
            caller = current_caller()
            who = narrower(caller.audience, AudienceKind(audience) if audience else None)
            asker = None if who.is_owner or caller.is_owner else caller.name
            async with gates.lock(who):
                reply = await twin.aanswer(question, who, asker=asker)
            return TwinAnswer.of(reply, who.kind.value)

    @server.tool(
        title="Add the owner's context to a request",
        description=(
            f"Before sending a request to another agent or expert on {owner}'s behalf, pass it "
            f"here: it comes back rewritten with the personal context from {owner}'s memory "
            "that the other side needs (preferences, constraints, history), with the list of "
            "facts added. Send the rewritten request instead of the original."
        ),
        annotations=READ_ONLY,
    )
    async def enhance_request(
        request: Annotated[str, Field(description="The request as it would be sent now.")],
        target: Annotated[
            str | None,
            Field(description="Who will receive it, e.g. 'a travel agent', 'a doctor'."),
        ] = None,
    ) -> EnhancedRequest:
        with tool_errors():
            require_owner("enhance_request")
            async with gates.lock(Audience.owner()):
                reply = await twin.aenhance(request, target)
            return EnhancedRequest.of(reply)

    @server.tool(
        title="Check a reply against the owner's situation",
        description=(
            f"Judge another agent's reply to {owner} from {owner}'s point of view: does it fit "
            "their situation, preferences and facts? Returns a verdict (fits / partly / does not "
            "fit), concrete feedback on what to change, and the owner facts it was checked "
            "against."
        ),
        annotations=READ_ONLY,
    )
    async def critique_reply(
        request: Annotated[str, Field(description=f"What {owner} (or you for them) asked.")],
        reply: Annotated[str, Field(description="The other agent's reply to judge.")],
    ) -> Critique:
        with tool_errors():
            require_owner("critique_reply")
            async with gates.lock(Audience.owner()):
                result = await twin.acritique(request, reply)
            return Critique.of(result)

    @server.tool(
        title=f"Search {owner}'s memories",
        description=(
            f"Search {owner}'s memories (notes and chat messages) directly, without the model: "
            "hybrid keyword and semantic search, best matches first, each with its full text, "
            "source, time, author and id. Use it to read the evidence yourself or to find a "
            "memory's id. Narrow by time, source or speaker when the question does."
        ),
        annotations=READ_ONLY,
    )
    async def search_memories(
        query: Annotated[str, Field(description="What to look for.")],
        k: Annotated[int, Field(ge=1, le=MAX_RESULTS, description="How many memories.")] = 10,
        since: Annotated[
            datetime | None, Field(description="Only memories from then on (ISO 8601, UTC).")
        ] = None,
        until: Annotated[
            datetime | None, Field(description="Only memories before then (ISO 8601, UTC).")
        ] = None,
        source: Annotated[
            str | None,
            Field(
                description="Only this source: a platform ('telegram', 'discord', 'whatsapp', "
                "'notes') or a source key."
            ),
        ] = None,
        speaker: Annotated[
            str | None, Field(description="Only messages written by this person.")
        ] = None,
    ) -> SearchResults:
        with tool_errors():
            if not query.strip():
                raise ValueError("the query is empty; say what to look for")
            narrowing = {
                "since": _utc(since),
                "until": _utc(until),
                "sources": (source,) if source else (),
                "speakers": (speaker,) if speaker else (),
            }
            hits = await asyncio.to_thread(twin.search, query, current_audience(), k, **narrowing)
            found = [FoundMemory.of(h) for h in hits]
            return SearchResults(query=query, count=len(found), memories=found)

    @server.tool(
        title=f"Remember something for {owner}",
        description=(
            f"Store a new memory for {owner}, in their words (e.g. 'I moved my dentist "
            "appointment to Friday'). It is searchable at once and joins the next profile build "
            "and training. Only for what the owner asked to remember."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    )
    async def remember(
        text: Annotated[str, Field(description="What to remember, as a self-contained note.")],
        visibility: Annotated[
            Visibility,
            Field(description="Who may see it: 'private' (owner only), 'friends' or 'public'."),
        ] = Visibility.PRIVATE,
    ) -> Remembered:
        with tool_errors():
            require_owner("remember")
            memory = await asyncio.to_thread(twin.remember, text, visibility, source="mcp")
            if memory is None:
                return Remembered(
                    stored=False,
                    id=None,
                    visibility=visibility.value,
                    note="This memory is already stored.",
                )
            return Remembered(
                stored=True,
                id=memory.id,
                visibility=memory.visibility.value,
                note="Stored; it joins the next profile build and training.",
            )

    @server.tool(
        title=f"Forget one of {owner}'s memories",
        description=(
            "Forget one memory for good, by id (from ask_twin or search_memories): it is "
            "deleted from the database and the search index, never imported or trained on "
            "again. Only when the owner asks for it."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def forget(
        memory_id: Annotated[str, Field(description="The id of the memory to forget.")],
    ) -> Forgotten:
        with tool_errors():
            require_owner("forget")
            memory = await asyncio.to_thread(twin.store.get, memory_id)
            if memory is None:
                raise ValueError(f"there is no memory with id {memory_id!r}")
            await asyncio.to_thread(twin.forget, memory_id)
            return Forgotten(
                id=memory.id,
                forgotten=True,
                source=memory.source_name,
                snippet=memory.snippet(160),
            )

    # -- resources -----------------------------------------------------------------------------

    @server.resource(
        "twin://bio",
        name="bio",
        title=f"{owner}'s bio",
        description=f"Who {owner} is and what they have been up to lately (L1 memory).",
        mime_type="text/markdown",
    )
    async def bio() -> str:
        audience = current_audience()
        return bio_markdown(owner, await asyncio.to_thread(read_profile, audience))

    @server.resource(
        "twin://topics",
        name="topics",
        title=f"{owner}'s topics",
        description=f"The topics {owner}'s memories cluster into, with keywords and time span.",
        mime_type="application/json",
    )
    async def topics() -> str:
        audience = current_audience()
        return topics_of(await asyncio.to_thread(read_profile, audience)).model_dump_json(indent=2)

    @server.resource(
        "twin://facts",
        name="facts",
        title=f"Facts about {owner}",
        description=f"Facts about {owner} drawn from memory, each with the memories behind it.",
        mime_type="application/json",
    )
    async def facts() -> str:
        audience = current_audience()
        return facts_of(await asyncio.to_thread(read_profile, audience)).model_dump_json(indent=2)

    @server.resource(
        "twin://status",
        name="status",
        title="Twin status",
        description=(
            "The model answering now (version, age, metrics), memory counts, the last training "
            "and the next scheduled one."
        ),
        mime_type="application/json",
    )
    async def status() -> str:
        audience = current_audience()
        report = await asyncio.to_thread(twin_status, twin, audience)
        return report.model_dump_json(indent=2)

    # -- prompts -------------------------------------------------------------------------------

    @server.prompt(
        name="answer_with_my_context",
        title="Answer with my context",
        description=(
            f"Answer a question with {owner}'s relevant memories and bio put in front of it."
        ),
    )
    async def answer_with_my_context(
        question: Annotated[str, Field(description="The question to answer.")],
    ) -> list[UserMessage]:
        audience = current_audience()
        hits = await asyncio.to_thread(twin.search, question, audience, 8)
        view = await asyncio.to_thread(read_profile, audience)
        lines = [
            f"- [{h.memory.id}] {_when(h.memory.timestamp)} {h.memory.author or 'note'} "
            f"({h.memory.source_name}): {h.memory.snippet(300)}"
            for h in hits
        ]
        bio_text = view.bio("global", "third") if view else ""
        parts = [f"Answer the question below for {owner}, using what their memory says."]
        if bio_text:
            parts.append(f"About {owner}:\n{bio_text}")
        parts.append(
            f"Relevant memories of {owner}:\n" + "\n".join(lines)
            if lines
            else f"Memory holds nothing that matches this question about {owner}."
        )
        parts.append(
            f"Question: {question}\n\nIf the memories do not answer it, say so plainly instead "
            "of guessing; cite memory ids for what you rely on."
        )
        return [UserMessage("\n\n".join(parts))]

    @server.prompt(
        name="introduce_me",
        title="Introduce me",
        description=f"Write a short introduction of {owner} from their bio, topics and facts.",
    )
    async def introduce_me(
        to: Annotated[
            str, Field(description="Who the introduction is for, e.g. 'a new colleague'.")
        ] = "someone meeting them for the first time",
    ) -> list[UserMessage]:
        audience = current_audience()
        view = await asyncio.to_thread(read_profile, audience)
        parts = [f"Write a short, warm introduction of {owner} for {to}, in a few sentences."]
        if view is not None:
            if view.bio():
                parts.append(f"Bio:\n{view.bio()}")
            if view.topics:
                parts.append(
                    "What they spend time on:\n"
                    + "\n".join(f"- {t.label}: {t.description}" for t in view.topics[:8])
                )
            if view.facts:
                parts.append("Facts:\n" + "\n".join(f"- {f.statement}" for f in view.facts[:12]))
        if len(parts) == 1:
            parts.append(
                f"{owner}'s profile is not built yet: learn about them first with the ask_twin "
                f"tool (e.g. 'Who is {owner}, and what matters to them?')."
            )
        parts.append("Use only what is given here or what the twin tells you; invent nothing.")
        return [UserMessage("\n\n".join(parts))]

    return server


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else ""
