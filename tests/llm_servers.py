"""A real OpenAI-compatible server for tests: `python -m llama_cpp.server` on a GGUF file.

`LlamaServer` starts the server on a free port of 127.0.0.1 (one thread, so it leaves the
other core to the tests), waits until it answers `/v1/models`, and stops it; a test may also
kill it to see what clients do when their server dies. The session fixtures built on it live
beside the tests that use them.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

START_SECONDS = 120


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """`python -m llama_cpp.server --model <gguf>` in a subprocess; `url` is its base URL
    (…/v1). Its output goes to `log_path`, quoted when it fails to start."""

    def __init__(self, model: Path, log_path: Path, *, context_size: int = 4096) -> None:
        self.model = model
        self.log_path = log_path
        self.context_size = context_size
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> LlamaServer:
        """Start the server and wait until it serves (raises RuntimeError if it does not)."""
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--n_ctx",
            str(self.context_size),
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while not self._serving():
            if self._process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log_path.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"llama_cpp.server did not start within {START_SECONDS} s")
            time.sleep(0.1)
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    def stop(self) -> None:
        """Stop the server (politely, then by force)."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def _serving(self) -> bool:
        try:
            return httpx.get(f"{self.url}/models", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
