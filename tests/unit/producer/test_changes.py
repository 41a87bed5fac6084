"""File changes wake the watcher as events (watchfiles), with polling as the fallback."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ingestor.producer.changes import Changes, relevant

NEVER_S = 600.0  # a rescan interval no test waits for: only an event ends the wait in time


def test_only_transcripts_and_directories_are_relevant() -> None:
    assert relevant(None, "/p/a/s.jsonl")
    assert relevant(None, "/p/new-project")
    assert not relevant(None, "/p/a/s.jsonl.tmp")
    assert not relevant(None, "/p/a/notes.txt")


def test_an_appended_line_wakes_the_wait(tmp_path: Path) -> None:
    async def main() -> None:
        project = tmp_path / "proj"
        project.mkdir()
        changes = Changes([tmp_path], rescan_s=NEVER_S, poll_s=NEVER_S)
        try:
            assert changes.events
            await changes.wait(asyncio.Event())  # the pass every new watch begins with
            await asyncio.sleep(0.2)  # the watch is set up in the background
            waiting = asyncio.ensure_future(changes.wait(asyncio.Event()))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            with (project / "s.jsonl").open("ab") as f:
                f.write(b"{}\n")
            await asyncio.wait_for(waiting, 30)  # an event, not the 600 s rescan
        finally:
            await changes.close()

    asyncio.run(main())


def test_without_events_it_polls(tmp_path: Path) -> None:
    async def main() -> None:
        changes = Changes([tmp_path], rescan_s=NEVER_S, poll_s=0.01, use_events=False)
        assert not changes.events
        await asyncio.wait_for(changes.wait(asyncio.Event()), 30)
        await changes.close()

    asyncio.run(main())


def test_a_missing_directory_is_polled_until_it_exists(tmp_path: Path) -> None:
    async def main() -> None:
        later = tmp_path / "later"
        changes = Changes([later], rescan_s=NEVER_S, poll_s=0.01)
        try:
            assert not changes.events
            await asyncio.wait_for(changes.wait(asyncio.Event()), 30)
            later.mkdir()
            # Watched from now on, and a pass right away for what appeared before.
            await asyncio.wait_for(changes.wait(asyncio.Event()), 30)
            assert changes.events
        finally:
            await changes.close()

    asyncio.run(main())


def test_stop_ends_the_wait(tmp_path: Path) -> None:
    async def main() -> None:
        changes = Changes([tmp_path], rescan_s=NEVER_S, poll_s=NEVER_S)
        stop = asyncio.Event()
        stop.set()
        await asyncio.wait_for(changes.wait(stop), 30)
        await changes.close()

    asyncio.run(main())
