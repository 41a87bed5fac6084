"""The transcript envelopes the watcher sends for a corpus, for the benches that run the
worker's side without it: each file read whole, ``parse_chunk`` with columns (as ``watch.py``'s
tails do), then ``envelopes`` of at most ``max_records`` records and the default byte bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

__all__ = ["watcher_envelopes"]

_MAX_BYTES = 900_000  # Settings.envelope_max_bytes' default
_MAX_RECORD_BYTES = 890_000


def watcher_envelopes(corpus: Path, max_records: int = 500) -> Iterator[bytes]:
    """Each envelope of ``corpus``' transcripts (``<corpus>/projects``), file by file."""
    from ingestor.producer.discover import find_jsonl
    from ingestor.producer.lines import envelopes, parse_chunk
    from ingestor.wire import TranscriptSource

    for path in find_jsonl([corpus / "projects"]):
        data = Path(path).read_bytes()
        chunk = parse_chunk(data, 0, max_record_bytes=_MAX_RECORD_BYTES, columns=True)
        source = TranscriptSource(file=path, project="p", first_ts=chunk.first_ts, scope="s")
        sent = envelopes(chunk.records, source, max_records=max_records, max_bytes=_MAX_BYTES)
        yield from (value for _stop, value in sent)
