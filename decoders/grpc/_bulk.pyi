"""Types of the compiled bulk path of `--report calls` (_bulk.c)."""

from collections.abc import Callable
from typing import Any

def init(
    static_table: list[tuple[bytes, bytes]],
    huffman_table: list[tuple[int, int, int]],
    limits: dict[str, float],
    decompress: Callable[[bytes, str], tuple[bytes | None, object]],
) -> None: ...

class Decoder:
    def __init__(self, flows: int, emit: bool, drain_every: int, clients: list[str]) -> None: ...
    def feed(
        self, buffer: Any, starts: Any, lengths: Any, packets: Any, flows: Any, directions: Any, ts_ns: Any
    ) -> list[tuple[int, int, str]]: ...
    def finish(self, packets: int) -> list[tuple[int, int, str]]: ...
    def bailed(self) -> dict[int, str]: ...
