"""The twin's MCP tools: ask, enhance, critique, search, remember, forget.

Each calls the Twin service for the audience of whoever is calling (`mcp_server.access`) and
returns a pydantic model, so clients get an `outputSchema`, structured content and the same
JSON as text. Expected failures come back as MCP tool errors with a message.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from lm import LLMError
from mcp_server.access import current_audience, current_caller, narrower
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
from memory.models import Visibility
from serving.service import Twin
from twin.privacy import Audience, AudienceKind, ModelSide
from twin.registry import RegistryError

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
        self._locks = {side: asyncio.Lock() for side in ModelSide}

    def lock(self, audience: Audience) -> asyncio.Lock:
        """The lock of the model that answers `audience`."""
        return self._locks[ModelSide.answering(audience.kind)]


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


def register_tools(server: MCPServer, twin: Twin) -> None:
    """Add the twin's tools to `server`."""
    owner = twin.owner
    gates = ModelGates()

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
