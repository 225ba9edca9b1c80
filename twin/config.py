"""One settings object for the whole twin, and the layout of its home directory.

Settings come from `<home>/twin.toml`, overridden by `TWIN_*` environment variables (nested with
a double underscore: `TWIN_OWNER__NAME=Ada`). The home is `--home`, else `$TWIN_HOME`, else
`./.twin`.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from memory.embed import DEFAULT_EMBEDDING_MODEL
from memory.models import OwnerIdentity, Visibility

DEFAULT_HOME = Path(".twin")
CONFIG_FILE = "twin.toml"
# The home and the secrets in it (tokens, memory) are readable by the owner only.
SECRET_DIR_MODE = 0o700
SECRET_FILE_MODE = 0o600


class ConfigError(Exception):
    """The configuration cannot be read or is invalid; the message says where and what."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pronouns(StrEnum):
    """The pronouns the twin uses for the owner when it tells others about them ("she works
    at…"); "they" takes plural verbs ("they work at…")."""

    SHE = "she"
    HE = "he"
    THEY = "they"


class OwnerSettings(_Section):
    name: str = "Me"
    aliases: list[str] = Field(default_factory=list)
    # How the twin speaks of you to others: "Iris works at…", then "she", "he" or "they".
    pronouns: Pronouns = Pronouns.THEY
    # Platform ids of the owner's accounts, as the exports name them, e.g.
    # telegram = ["user123456789"], discord = ["123456789012345678"].
    ids: dict[str, list[str]] = Field(default_factory=dict)

    def identity(self) -> OwnerIdentity:
        """How importers recognise the owner's own messages."""
        ids = tuple(f"{platform}:{i}" for platform, values in self.ids.items() for i in values)
        return OwnerIdentity(names=(self.name, *self.aliases), ids=ids)


class MemorySettings(_Section):
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    # Visibility of memories that do not say their own, per source format. Anything not listed
    # here is private: the safe default for a model that *is* memory.
    default_visibility: dict[str, Visibility] = Field(
        default_factory=lambda: {
            "notes": Visibility.PRIVATE,
            "telegram": Visibility.FRIENDS,
            "discord": Visibility.FRIENDS,
            "whatsapp": Visibility.FRIENDS,
        }
    )
    chunk_chars: int = Field(default=900, ge=200, le=8000)
    chunk_overlap: int = Field(default=120, ge=0, le=2000)
    # Larger files are refused (left out of a folder, an error when named): a Markdown or text
    # note above max_note_mb (10 MB of text is some 12,000 chunks to embed), any other file (a
    # chat export, a PDF) above max_file_mb (reading JSON takes several times its size in
    # memory). 0 means no limit.
    max_note_mb: float = Field(default=10, ge=0)
    max_file_mb: float = Field(default=200, ge=0)
    # How long a write (an import, a forget, a `remember`) waits for another process's write to
    # finish before it gives up with an error, in seconds.
    write_wait_s: float = Field(default=300.0, gt=0)

    def visibility_for(self, fmt: str) -> Visibility:
        return self.default_visibility.get(fmt, Visibility.PRIVATE)

    @property
    def max_note_bytes(self) -> int | None:
        return _megabytes(self.max_note_mb)

    @property
    def max_file_bytes(self) -> int | None:
        return _megabytes(self.max_file_mb)


def _megabytes(limit: float) -> int | None:
    return int(limit * 1024 * 1024) if limit > 0 else None


class LLMSettings(_Section):
    """One language model a role points at. `backend = "none"` means the role is not set."""

    backend: Literal["none", "llamacpp", "openai", "transformers"] = "none"
    # llamacpp: a .gguf file; transformers: a model folder
    path: str = ""
    # openai: the server's base URL (…/v1), the model name, and the key (or the env var holding it)
    base_url: str = ""
    model: str = ""
    api_key: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    # 0 = leave one core free for the rest of the machine
    threads: int = Field(default=0, ge=0)
    context_size: int = Field(default=2048, ge=256)
    max_tokens: int = Field(default=512, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    timeout: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0)

    @property
    def configured(self) -> bool:
        return self.backend != "none"


class LLMRoles(_Section):
    # the trained L2 model; empty means "the registry's current model"
    twin: LLMSettings = Field(default_factory=LLMSettings)
    # writes training data and L1 text; none = offline synthesis
    synthesizer: LLMSettings = Field(default_factory=LLMSettings)
    # scores answers; none = no judge
    judge: LLMSettings = Field(default_factory=LLMSettings)


class TrainingSettings(_Section):
    """How `twin train` turns memory into a model. The recipe fits the numbers to the base and
    the machine; a value set here wins over it."""

    # Empty: the packaged SmolLM2-135M-Instruct (offline). Or a Hugging Face model folder, a
    # .gguf file of a llama/qwen2 chat model, or a hub id (e.g. "Qwen/Qwen2.5-0.5B-Instruct").
    base: str = ""
    # Chain-of-thought in the training replies. "weak" (the answer alone) by default: the
    # packaged 135M base trained on a CPU budget learns the strong format's opening and loops
    # on it (BENCHMARKS.md); "strong" is for bases and budgets that can learn to reason.
    strategy: Literal["weak", "multi-step", "strong"] = "weak"
    seed: int = 0
    # SFT and DPO: epochs, learning rates, sequence length.
    sft_epochs: float = Field(default=2.0, gt=0)
    sft_learning_rate: float = Field(default=3e-4, gt=0)
    # The owner's model learns two reply formats the shared one never saw (enhance, critic)
    # from a few dozen samples: at the shared model's rate it never opens with "Verdict:".
    owner_sft_epochs: float = Field(default=4.0, gt=0)
    owner_sft_learning_rate: float = Field(default=6e-4, gt=0)
    dpo_epochs: float = Field(default=1.0, ge=0)
    dpo_learning_rate: float = Field(default=2e-4, gt=0)
    dpo_beta: float = Field(default=0.1, gt=0)
    max_length: int = Field(default=640, ge=64)
    batch_size: int = Field(default=4, ge=1)
    # The LoRA adapters' shape. On a CPU only the top `lora_top_layers` blocks are adapted
    # (back-propagation stops there: faster steps); on a GPU every block.
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_top_layers: int | None = Field(default=12, ge=1)
    # The GGUF quantisations to write; the first is the one that is served, the others are
    # its fallbacks.
    quantizations: list[Literal["f16", "q8_0", "f32"]] = Field(
        default_factory=lambda: ["q8_0", "f16"], min_length=1
    )


class AnswerSettings(_Section):
    """How the twin's answers are checked before anyone reads them."""

    # A memory answer that adds nothing from the memories it was shown (an echo of the
    # question), or names a number or a name they do not hold, and any reply that recites the
    # model's instructions, give way to the closest memory (serving/grounding.py). Off: the
    # model's words are shown whatever they say.
    grounded_only: bool = True


class ScheduleSettings(_Section):
    """When `twin serve` retrains: it builds L1 and trains again when memory has moved on."""

    enabled: bool = True
    # cron, in the machine's time zone: minute hour day month weekday
    retrain_cron: str = "30 3 * * *"
    # New memories since the serving model was trained that make a retraining worth it.
    # Anything forgotten since then always does: it must leave the weights too.
    min_new_memories: int = Field(default=20, ge=1)


class MCPSettings(_Section):
    """The MCP server. Over stdio the client is the owner; over HTTP a bearer token says who."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    # The owner's token; `twin init` generates one.
    token: str = ""
    # Friends who may use the twin over HTTP: name → their token. They get the friend audience.
    friend_tokens: dict[str, str] = Field(default_factory=dict)
    # Browser origins allowed to call the HTTP server (besides none at all, e.g. CLI clients).
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost", "http://127.0.0.1"]
    )


class BotSettings(_Section):
    """Telegram and Discord bots that let friends ask the twin."""

    telegram_token: str = ""
    discord_token: str = ""
    # Who counts as a friend, per platform: user ids as the platform gives them.
    friends: dict[str, list[str]] = Field(default_factory=dict)
    # What strangers get: a polite refusal, or answers from public memories only.
    strangers: Literal["refuse", "public"] = "refuse"
    # Discord channel ids where the bot answers mentions (DMs are always answered).
    discord_channels: list[str] = Field(default_factory=list)
    messages_per_minute: int = Field(default=6, ge=1)
    messages_per_day: int = Field(default=200, ge=1)
    # Turns of the conversation kept as short-term context for the next answer.
    history_turns: int = Field(default=6, ge=0, le=50)


class Settings(BaseSettings):
    """Everything configurable about one twin."""

    model_config = SettingsConfigDict(
        env_prefix="TWIN_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = DEFAULT_HOME
    owner: OwnerSettings = Field(default_factory=OwnerSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    llm: LLMRoles = Field(default_factory=LLMRoles)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    answers: AnswerSettings = Field(default_factory=AnswerSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    mcp: MCPSettings = Field(default_factory=MCPSettings)
    bots: BotSettings = Field(default_factory=BotSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment must win over them.
        return (env_settings, init_settings)

    @property
    def paths(self) -> TwinHome:
        return TwinHome(self.home)


@dataclass(frozen=True)
class TwinHome:
    """Where a twin keeps its things."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def memory_dir(self) -> Path:
        return self.root / "memory"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def bases_dir(self) -> Path:
        """Base models converted into trainable folders (once per file)."""
        return self.models_dir / "bases"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def schedule_db(self) -> Path:
        return self.root / "schedule.sqlite"


def resolve_home(home: Path | str | None = None) -> Path:
    """`--home`, else `$TWIN_HOME`, else `./.twin`."""
    if home:
        return Path(home).expanduser()
    env = os.environ.get("TWIN_HOME")
    return Path(env).expanduser() if env else DEFAULT_HOME


def load_settings(home: Path | str | None = None, **overrides: Any) -> Settings:
    """Read `<home>/twin.toml` (if it exists) and the environment into a `Settings`."""
    root = resolve_home(home)
    data: dict[str, Any] = {}
    path = root / CONFIG_FILE
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    data.update(overrides)
    data["home"] = root
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path} (or a TWIN_* variable): {problems}") from exc


CONFIG_TEMPLATE = """\
# twin.toml: settings of this twin. Every key is optional; TWIN_* environment variables
# override it (nested keys with a double underscore, e.g. TWIN_OWNER__NAME="Ada").

[owner]
# Your name as it appears in chat exports; your own messages are recognised by it.
name = {name}
# Other names you appear under (nicknames, usernames).
aliases = []
# How your twin speaks of you to friends: "she", "he" or "they" ("Ada works at…, they…").
pronouns = "they"

[owner.ids]
# Your account ids per platform, as the exports write them. They identify your messages even
# when your display name changes.
# telegram = ["user123456789"]   # "from_id" in a Telegram Desktop export
# discord = ["123456789012345678"]   # author.id in a DiscordChatExporter export
# whatsapp = []   # WhatsApp exports carry names only; use aliases

[memory]
# A sentence-transformers model folder; the default is packaged and works offline.
embedding_model = "all-MiniLM-L6-v2"
# Notes are chunked on headings and paragraphs into pieces of about this many characters.
chunk_chars = 900
chunk_overlap = 120
# Larger files are refused by `twin ingest` (left out of a folder, an error when named):
# Markdown and text notes above max_note_mb, anything else (chat exports, PDFs) above
# max_file_mb. 0 = no limit.
max_note_mb = 10
max_file_mb = 200

[memory.default_visibility]
# Who may see memories from each kind of source, unless a note says otherwise in its front
# matter (visibility: private). `twin ingest --visibility` can only narrow it; only
# `twin ingest --default-visibility` replaces it for one import (and so may widen it).
# private = you only; friends = people on your allowlist; public = anyone.
notes = "private"
telegram = "friends"
discord = "friends"
whatsapp = "friends"

# Language models, by role. backend = "none" | "llamacpp" | "openai" | "transformers".
# [llm.synthesizer]        # writes training data; none = offline synthesis from your memory
# backend = "openai"
# base_url = "http://127.0.0.1:11434/v1"   # Ollama, vLLM, llama.cpp server, LM Studio, OpenAI
# model = "qwen2.5:7b-instruct"
# api_key_env = "OPENAI_API_KEY"
#
# [llm.judge]              # scores answers during evaluation; none = no judge
# backend = "none"

[training]
# Empty base = the packaged SmolLM2-135M-Instruct, fine-tuned offline (about 15 minutes on two
# cores). Or a Hugging Face model folder, a .gguf file, or a hub id you have downloaded, e.g.
# "Qwen/Qwen2.5-0.5B-Instruct".
base = ""
strategy = "weak"         # chain-of-thought data: weak | multi-step | strong (for larger bases)

[answers]
# A memory answer that only restates the question, or names a number or a name the memories
# it was shown do not hold, and any reply reciting the model's instructions, give way to the
# closest memory. false: show the model's words.
grounded_only = true

[schedule]
# `twin serve` retrains on this cron (minute hour day month weekday) when at least
# min_new_memories arrived since the serving model, or anything was forgotten.
enabled = true
retrain_cron = "30 3 * * *"
min_new_memories = 20

[mcp]
# `twin serve mcp --http` listens here; clients send `Authorization: Bearer <token>`.
host = "127.0.0.1"
port = 8765
token = "{token}"   # the owner's token: keep it secret (or set TWIN_MCP__TOKEN)

[mcp.friend_tokens]
# A friend's own token gives them the friend audience: e.g. ana = "<long random string>"

[bots]
# Bot tokens are secrets: better set TWIN_BOTS__TELEGRAM_TOKEN / TWIN_BOTS__DISCORD_TOKEN.
telegram_token = ""
discord_token = ""
strangers = "refuse"      # or "public": answer strangers from public memories only
discord_channels = []     # channel ids where mentions are answered (DMs always are)
messages_per_minute = 6
messages_per_day = 200

[bots.friends]
# Friends' user ids per platform; everyone else is a stranger.
# telegram = ["123456789"]
# discord = ["123456789012345678"]
"""


def init_home(home: Path, owner_name: str, *, force: bool = False) -> Path:
    """Create a twin home with a commented twin.toml for `owner_name`, the owner's name as it
    appears in their chats. Returns the config file's path."""
    if not owner_name.strip():
        raise ConfigError("the owner's name is empty: it is how your own messages are recognised")
    paths = TwinHome(home)
    if paths.config_file.exists() and not force:
        raise ConfigError(f"{paths.config_file} already exists; pass --force to overwrite it")
    # The home holds a life's memory and the tokens that open it: the owner's alone.
    for folder in (paths.root, paths.memory_dir, paths.models_dir, paths.runs_dir):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(SECRET_DIR_MODE)
    text = CONFIG_TEMPLATE.format(
        # a JSON string is a valid TOML basic string: quotes and backslashes are escaped
        name=json.dumps(owner_name.strip(), ensure_ascii=False),
        token=secrets.token_urlsafe(32),
    )
    fd = os.open(paths.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SECRET_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    paths.config_file.chmod(SECRET_FILE_MODE)  # an existing file keeps its mode on open
    return paths.config_file
