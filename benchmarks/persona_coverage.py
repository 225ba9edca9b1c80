"""Persona coverage: is an accepted answer in what retrieval puts in front of the model?

    python benchmarks/persona_coverage.py examples/persona [--now 2026-11-21] [--plot PNG] \
        [--home DIR] [--budget 4x200 --budget 6x400 ...]

The persona's exports and notes are ingested as `twin ingest` would (its twin.toml, the
importers, the default visibilities), L1 is built offline with a fixed clock, and each
non-private question of its `questions.jsonl` is asked through the twin's own search
(`Twin.search`, what the MCP tool `search_memories` calls) in the asker's audience: "self"
questions as the owner, "friend" questions as a friend. A question is covered at k when an
accepted answer appears in one of the top k memories as rendered for the model
(`ContextMemory`: its date, who wrote it, its text). Also counted: private memories among a
friend's top 10, for every friend question (private ones included); it must be zero.

Whole memories are more than a model reads: a prompt shows the first M relevant memories, each
cut to C characters around the question's words (`PromptBudget`). For each `--budget MxC`,
`<audience>_shown_MxC` is the share of questions whose accepted answer is in that cut prompt,
the ceiling of what a model answering from it can get right.

Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.clock import FixedClock
from memory.models import Memory, Visibility
from memory.profile import ProfileBuilder
from memory.store import MemoryStore
from serving.service import Twin, open_twin
from training.evaluate import Asker, PersonaQuestion, load_questions
from training.synthesize.passages import normalise
from twin.config import CONFIG_FILE, load_settings
from twin.ingest import open_store, parse_paths, store_parsed
from twin.tasks import ContextMemory, PromptBudget

KS = (1, 3, 5)
PRIVATE_CHECK_K = 10
NOTES_FOLDER = "notes"


def persona_inputs(persona: Path) -> list[Path]:
    """What `twin ingest` is given for a persona folder: every export in its subfolders, and
    the notes folder whole."""
    chats = sorted(
        p
        for folder in persona.iterdir()
        if folder.is_dir() and folder.name != NOTES_FOLDER
        for p in folder.iterdir()
        if p.is_file()
    )
    notes = persona / NOTES_FOLDER
    return [*chats, *([notes] if notes.is_dir() else [])]


def rendered(memory: Memory) -> str:
    """A memory as the model is shown it (whole, not cut to a prompt budget)."""
    shown = ContextMemory.of(memory)
    return normalise(f"{shown.when} {shown.who}: {shown.text}")


def covered_at(question: PersonaQuestion, memories: list[Memory]) -> int | None:
    """The rank (1-based) of the first memory holding an accepted answer, or None."""
    answers = [normalise(a) for a in question.answers]
    for rank, memory in enumerate(memories, start=1):
        text = rendered(memory)
        if any(a in text for a in answers):
            return rank
    return None


def shown(question: PersonaQuestion, memories: list[Memory], budget: PromptBudget) -> bool:
    """Whether an accepted answer is in the memories as a prompt with `budget` shows them."""
    answers = [normalise(a) for a in question.answers]
    lines = [
        normalise(ContextMemory.of(m).line(budget.chars_per_memory, focus=question.question))
        for m in memories[: budget.memories]
    ]
    return any(a in line for a in answers for line in lines)


def parse_budget(text: str) -> PromptBudget:
    """`6x400` → six memories of up to 400 characters."""
    memories, _, chars = text.partition("x")
    try:
        return PromptBudget(memories=int(memories), chars_per_memory=int(chars), bio=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a budget is MEMORIESxCHARS, e.g. 4x200: {text!r}"
        ) from None


def newest_memory(store: MemoryStore) -> datetime:
    row = store.conn.execute("SELECT max(coalesce(ts, created_at)) FROM memories").fetchone()
    return datetime.fromtimestamp(row[0], tz=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("persona", type=Path, help="a persona folder (twin.toml, questions.jsonl)")
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        help="the day the twin is asked on (default: the day of the newest memory)",
    )
    parser.add_argument("--plot", type=Path, help="write a coverage plot (PNG) here")
    parser.add_argument("--home", type=Path, help="build the twin's home here (kept)")
    parser.add_argument(
        "--budget",
        type=parse_budget,
        action="append",
        default=[],
        help="also count answers shown in a prompt of M memories cut to C characters (MxC)",
    )
    args = parser.parse_args()

    questions = load_questions(args.persona / "questions.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        if home.exists():
            shutil.rmtree(home)
        home.mkdir(parents=True)
        shutil.copy(args.persona / CONFIG_FILE, home / CONFIG_FILE)
        settings = load_settings(home)
        with open_store(settings) as store:
            parsed = parse_paths(persona_inputs(args.persona), settings)
            for item in parsed:
                store_parsed(store, item, settings)
            now = args.now or newest_memory(store)
            if now.tzinfo is None:
                now = datetime.combine(now.date(), time(12), tzinfo=UTC)
            clock = FixedClock(now)
            ProfileBuilder(store, settings.owner.name, clock=clock).build(full=True)
            # the twin as `twin serve` opens it, asked on the fixed day
            served = open_twin(settings, store)
            twin = Twin(settings, store, served.models, served.bios, clock=clock)
            figures = measure(twin, questions, args.budget)
            figures["memories"] = store.count()
            figures["now"] = now.date().isoformat()
    if args.plot:
        plot(figures, args.plot)
        figures["plot"] = str(args.plot)
    print(json.dumps(figures))


def measure(
    twin, questions: list[PersonaQuestion], budgets: list[PromptBudget] = ()
) -> dict[str, object]:
    """Coverage at each k per audience, the share shown within each budget, the misses, and
    private memories in friends' results."""
    ranks: dict[str, list[int | None]] = defaultdict(list)
    shown_in: dict[tuple[str, PromptBudget], int] = defaultdict(int)
    missed: dict[str, list[str]] = defaultdict(list)
    private_hits = 0
    friend_questions = 0
    for question in questions:
        audience = question.asker.audience
        name = audience.kind.value
        if question.asker is Asker.FRIEND:
            friend_questions += 1
            top = twin.search(question.question, audience, k=PRIVATE_CHECK_K)
            private_hits += sum(
                1
                for h in top
                if h.memory.visibility == Visibility.PRIVATE or h.memory.shared_with is not None
            )
        if question.private:
            continue
        hits = twin.search(question.question, audience, k=max(KS))
        rank = covered_at(question, [h.memory for h in hits])
        for budget in budgets:
            # searched as the twin searches before it prompts: k = the budget, relevant only
            found = twin.search(question.question, audience, k=budget.memories)
            relevant = [h.memory for h in found if h.relevant]
            shown_in[name, budget] += shown(question, relevant, budget)
        ranks[name].append(rank)
        if rank is None:
            missed[name].append(question.question)
    figures: dict[str, object] = {}
    for name, values in ranks.items():
        figures[f"{name}_questions"] = len(values)
        for k in KS:
            hit = sum(1 for r in values if r is not None and r <= k)
            figures[f"{name}_top{k}"] = round(hit / len(values), 3)
            figures[f"{name}_covered@{k}"] = f"{hit}/{len(values)}"
        for budget in budgets:
            label = f"{budget.memories}x{budget.chars_per_memory}"
            figures[f"{name}_shown_{label}"] = round(shown_in[name, budget] / len(values), 3)
    figures["friend_private_in_top10"] = private_hits
    figures["friend_questions_checked"] = friend_questions
    figures["missed"] = dict(missed)
    return figures


def plot(figures: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.35
    for i, name in enumerate(("owner", "friend")):
        heights = [float(figures[f"{name}_top{k}"]) for k in KS]
        bars = ax.bar([j + i * width for j in range(len(KS))], heights, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks([j + width / 2 for j in range(len(KS))])
    ax.set_xticklabels([f"top {k}" for k in KS])
    ax.set(title="Persona questions with an answer in retrieval", ylabel="share covered")
    ax.set_ylim(0, 1.05)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
