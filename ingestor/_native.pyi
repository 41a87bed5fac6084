# The Rust reader built by `make setup` from native/ (see ingestor/producer/lines.py).
from typing import Any

def line_rows(
    data: bytes, offset: int, max_record_bytes: int, /
) -> tuple[list[tuple[Any, ...] | bytes], int, str | None]: ...
