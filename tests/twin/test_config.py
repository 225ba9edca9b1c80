"""Settings: twin.toml, TWIN_* overrides, the home directory, and clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from memory.models import Visibility
from twin.config import ConfigError, Pronouns, init_home, load_settings, resolve_home


def test_defaults_without_a_file(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    assert s.home == tmp_path
    assert s.owner.name == "Me"
    assert s.owner.pronouns == Pronouns.THEY
    assert s.memory.visibility_for("notes") == Visibility.PRIVATE
    assert s.memory.visibility_for("telegram") == Visibility.FRIENDS
    assert s.memory.visibility_for("something-new") == Visibility.PRIVATE
    assert not s.llm.synthesizer.configured
    assert s.paths.memory_dir == tmp_path / "memory"


def test_init_writes_a_commented_file_that_loads(tmp_path: Path) -> None:
    path = init_home(tmp_path / "home", "Iris Calder")
    text = path.read_text()
    assert text.count("#") > 10, "the template explains itself"
    s = load_settings(tmp_path / "home")
    assert s.owner.name == "Iris Calder"
    assert s.owner.pronouns == Pronouns.THEY and 'pronouns = "they"' in text
    assert (tmp_path / "home" / "memory").is_dir()
    with pytest.raises(ConfigError, match="already exists"):
        init_home(tmp_path / "home", "Someone")
    init_home(tmp_path / "home", "Someone Else", force=True)
    assert load_settings(tmp_path / "home").owner.name == "Someone Else"


def test_the_home_and_its_secrets_are_the_owners_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    path = init_home(home, "Iris Calder")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the MCP token
    for folder in (home, home / "memory", home / "models", home / "runs"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    path.chmod(0o644)
    init_home(home, "Iris Calder", force=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_values_and_owner_identity(persona_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "twin.toml").write_text((persona_dir / "twin.toml").read_text())
    s = load_settings(tmp_path)
    assert s.owner.pronouns == Pronouns.SHE
    identity = s.owner.identity()
    assert identity.matches("iris", None)
    assert identity.matches("someone renamed", "telegram:user5550101")
    assert not identity.matches("Tomás Ferreira", "telegram:user5550202")


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "twin.toml").write_text('[owner]\nname = "From File"\naliases = ["F"]\n')
    monkeypatch.setenv("TWIN_OWNER__NAME", "From Env")
    monkeypatch.setenv("TWIN_LLM__SYNTHESIZER__BACKEND", "openai")
    s = load_settings(tmp_path)
    assert s.owner.name == "From Env"
    assert s.owner.aliases == ["F"], "keys the environment does not set stay from the file"
    assert s.llm.synthesizer.configured


def test_home_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TWIN_HOME", raising=False)
    assert resolve_home(None) == Path(".twin")
    monkeypatch.setenv("TWIN_HOME", str(tmp_path))
    assert resolve_home(None) == tmp_path
    assert resolve_home(tmp_path / "x") == tmp_path / "x"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[owner\nname = 1", "not valid TOML"),
        ('[owner]\nnmae = "typo"', "owner.nmae"),
        ('[owner]\npronouns = "xe"', "owner.pronouns"),
        ('[memory.default_visibility]\nnotes = "everyone"', "memory.default_visibility.notes"),
        ('[llm.judge]\nbackend = "gpt"', "llm.judge.backend"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "twin.toml").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    assert str(tmp_path / "twin.toml") in str(info.value)
    assert message in str(info.value)
