"""`twin` commands run as separate processes on one home, as a user runs them in two terminals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import app

TWIN = Path(sys.executable).with_name("twin")
SAM = Path("whatsapp") / "WhatsApp Chat with Sam.txt"
TELEGRAM = Path("telegram") / "result.json"


def run_twin(home: Path, *args: str, wait_s: float | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if wait_s is not None:
        env["TWIN_MEMORY__WRITE_WAIT_S"] = str(wait_s)
    return subprocess.run(
        [str(TWIN), "--home", str(home), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def start_twin(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.Popen(
        [str(TWIN), "--home", str(home), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def twin(home: Path, *args: str):
    """`twin` in this process, for the steps that do not contend."""
    return CliRunner().invoke(app, ["--home", str(home), *args])


@pytest.fixture
def home(tmp_path: Path, persona_dir: Path) -> Path:
    home = tmp_path / "home"
    assert twin(home, "init", "--owner", "Iris Calder").exit_code == 0
    (home / "twin.toml").write_text((persona_dir / "twin.toml").read_text())
    return home


def exported(home: Path) -> list[dict]:
    result = twin(home, "memory", "export")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line]


def test_two_ingests_at_once_on_a_new_home_both_succeed(home: Path, persona_dir: Path) -> None:
    first = start_twin(home, "ingest", str(persona_dir / SAM))
    second = start_twin(home, "ingest", str(persona_dir / TELEGRAM))
    for process in (first, second):
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors
        assert "Traceback" not in errors

    rows = exported(home)
    assert len(rows) == len({(r["source"], r["source_id"]) for r in rows}), "each memory once"
    assert {r["source"].split(":")[0] for r in rows} == {"whatsapp", "telegram"}
    stats = twin(home, "memory", "stats")
    assert f"{len(rows)} memories" in stats.stdout
    assert f"vector index holds {len(rows)}." in stats.stdout
    assert "out of step" not in stats.stdout


def test_a_forget_that_cannot_get_its_turn_says_why(home: Path, persona_dir: Path) -> None:
    assert twin(home, "ingest", str(persona_dir / SAM)).exit_code == 0
    target = exported(home)[0]["id"]
    database = home / "memory" / "memory.sqlite"
    # Another process holds the write lock (a writer that is stuck, or far slower than usual).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('holding', flush=True)\n"
            "time.sleep(120)\n",
            str(database),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        result = run_twin(home, "memory", "forget", "--yes", target, wait_s=2)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "waiting for another writer" in result.stderr
    assert "is busy" in result.stderr and str(database) in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr
    assert target in {r["id"] for r in exported(home)}, "nothing was forgotten"

    again = twin(home, "memory", "forget", "--yes", target)
    assert again.exit_code == 0, again.output
    assert target not in {r["id"] for r in exported(home)}
