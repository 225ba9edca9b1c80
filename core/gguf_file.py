"""A GGUF file's header, read quickly: is the file whole, and what do its metadata strings say.

A header walk finds truncated and damaged model files in milliseconds without loading the model
(llama.cpp crashes or hangs on some damaged files; the `gguf` package's reader takes seconds,
because it decodes the whole vocabulary)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# GGUF metadata value types: fixed sizes in bytes; 8 = string, 9 = array
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
# tensor types (ggml_type) → (elements per block, bytes per block)
_BLOCKS = {
    0: (1, 4),  # f32
    1: (1, 2),  # f16
    2: (32, 18),  # q4_0
    3: (32, 20),  # q4_1
    6: (32, 22),  # q5_0
    7: (32, 24),  # q5_1
    8: (32, 34),  # q8_0
    9: (32, 36),  # q8_1
    10: (256, 84),  # q2_k
    11: (256, 110),  # q3_k
    12: (256, 144),  # q4_k
    13: (256, 176),  # q5_k
    14: (256, 210),  # q6_k
    15: (256, 292),  # q8_k
    24: (1, 1),  # i8
    25: (1, 2),  # i16
    26: (1, 4),  # i32
    27: (1, 8),  # i64
    28: (1, 8),  # f64
    30: (1, 2),  # bf16
}


class _Damaged(Exception):
    pass


def gguf_problem(path: Path) -> str | None:
    """What is wrong with the GGUF at `path` ("missing", "empty", "truncated: …"), or None
    when its header is sound and the file is as long as its tensors need."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size == 0:
        return "empty file"
    try:
        with path.open("rb") as stream:
            needed = _needed_bytes(stream)
    except _Damaged as exc:
        return str(exc)
    except (OSError, struct.error, UnicodeDecodeError, MemoryError):
        return "damaged header (not a complete GGUF file)"
    if needed is None:
        return None  # a tensor type this check does not know: trust the header
    if size < needed:
        return f"truncated: {size / 1e6:.1f} MB of {needed / 1e6:.1f} MB"
    return None


def metadata_string(path: Path, key: str) -> str | None:
    """The string value of metadata `key` in the GGUF at `path` (None: absent or not a
    string). Raises ValueError when the header cannot be read."""
    try:
        with path.open("rb") as stream:
            return _header(stream, want=key)[1]
    except (_Damaged, OSError, struct.error) as exc:
        raise ValueError(f"{path}: cannot read the GGUF header ({exc})") from exc


def _header(stream: BinaryIO, want: str = "") -> tuple[int, str | None, int]:
    """Walk the metadata: (tensor count, the string value of `want`, the alignment)."""
    if stream.read(4) != MAGIC:
        raise _Damaged("not a GGUF file")
    version, tensors, kvs = struct.unpack("<IQQ", _read(stream, 20))
    if version < 2 or tensors > 1_000_000 or kvs > 1_000_000:
        raise _Damaged(f"damaged header (version {version})")
    alignment = DEFAULT_ALIGNMENT
    found = None
    for _ in range(kvs):
        key = _string(stream)
        kind = _u32(stream)
        if key == "general.alignment" and kind == 4:
            alignment = _u32(stream)
        elif key == want and kind == _STRING:
            found = _string(stream)
        else:
            _skip_value(stream, kind)
    return tensors, found, alignment


def _needed_bytes(stream: BinaryIO) -> int | None:
    tensors, _, alignment = _header(stream)
    end = 0
    for _ in range(tensors):
        _string(stream)
        dims = _u32(stream)
        if dims > 8:
            raise _Damaged("damaged tensor table")
        shape = struct.unpack(f"<{dims}Q", _read(stream, 8 * dims))
        kind, offset = struct.unpack("<IQ", _read(stream, 12))
        block = _BLOCKS.get(kind)
        if block is None:
            return None
        elements = 1
        for dim in shape:
            elements *= dim
        end = max(end, offset + elements // block[0] * block[1])
    data_start = -(-stream.tell() // alignment) * alignment
    return data_start + end


def _read(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise _Damaged("truncated header")
    return data


def _u32(stream: BinaryIO) -> int:
    return struct.unpack("<I", _read(stream, 4))[0]


def _string(stream: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _read(stream, 8))
    if length > 1 << 24:
        raise _Damaged("damaged header (a string of impossible length)")
    return _read(stream, length).decode("utf-8", errors="replace")


def _skip_value(stream: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        _read(stream, _FIXED[kind])
    elif kind == _STRING:
        (length,) = struct.unpack("<Q", _read(stream, 8))
        stream.seek(length, 1)
    elif kind == _ARRAY:
        item, count = struct.unpack("<IQ", _read(stream, 12))
        if item in _FIXED:
            stream.seek(_FIXED[item] * count, 1)
        elif item == _STRING:
            for _ in range(count):
                (length,) = struct.unpack("<Q", _read(stream, 8))
                stream.seek(length, 1)
        else:
            raise _Damaged("damaged header (nested arrays)")
    else:
        raise _Damaged(f"damaged header (value type {kind})")
