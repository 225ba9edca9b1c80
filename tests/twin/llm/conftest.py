"""Models and servers for the LLM backend tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.model_fixtures import teach_replies
from tests.twin.llm.scenarios import taught_conversations
from tests.twin.llm.scripted_server import ScriptedServer
from training.export import export_gguf


@pytest.fixture(autouse=True)
def _torch_on_one_thread(torch_single_thread: None) -> None:
    """Every LLM test runs torch single-threaded (see `torch_single_thread`)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(chat_gguf_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            "1",
            "--n_ctx",
            "1024",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 60 s")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A fresh stand-in OpenAI-compatible server for one test."""
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()
