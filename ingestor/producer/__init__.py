"""The file watcher: Claude Code transcripts (``projects/**.jsonl``) to the transcripts topic.

::

    discover.py   which files, which project, ccusage's file order
    lines.py      bytes → records → envelopes (pure, the hot path)
    tail.py       one file's identity, generation and position
    checkpoint.py durable positions (atomic JSON), reset from ClickHouse
    sender.py     the Sender protocol, KafkaSender on aiokafka
    watch.py      Watcher: passes over all files, in order, sending and committing
"""

from ingestor.producer.checkpoint import Checkpoint, FilePosition, default_checkpoint_path
from ingestor.producer.sender import KafkaSender, Sender
from ingestor.producer.watch import Watcher, WatchStats

__all__ = [
    "Checkpoint",
    "FilePosition",
    "KafkaSender",
    "Sender",
    "WatchStats",
    "Watcher",
    "default_checkpoint_path",
]
