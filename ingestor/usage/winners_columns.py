"""``winners.decide`` over columns: the common groups decided with numpy, the others left to it.
Pure: arrays in, row indices out.

The worker decides every usage line it stores (``clickhouse/winners.py``). Made a Python object
a copy, that was ~11 µs a line with the GIL held, on the insert thread that bounds a backfill.
Most groups need no object: a line without message id counts in its own slot, and in a group
whose copies share one request id every copy after the first matches the first one's entry, so
the group is one entry in the first copy's slot (first in ccusage's order: file path, then
offset), won by the first copy of the greatest ``(not sidechain, total, has speed)`` — which is
what ``dedup.should_replace`` compares, a copy replacing the entry only when strictly greater.
Those are decided here; the other groups' rows are returned whole, for ``decide``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["Decided", "decide_columns"]

Ints = Any  # a one-dimensional numpy array of integers (numpy's stubs are not worth the noise)


class Decided(NamedTuple):
    """Row indices: each counted line with its slot's row, and the rows left to ``decide``."""

    winners: Ints  # int64: the counted lines
    slots: Ints  # int64: the row whose place each one holds (same length as ``winners``)
    rest: Ints  # int64: every current row of the groups not decided here (whole groups)


def decide_columns(
    group: Ints,
    file_rank: Ints,
    generation: Ints,
    offset: Ints,
    current: Ints,
    request: Ints,
    sidechain: Ints,
    total: Ints,
    speed: Ints,
) -> Decided:
    """The counted lines among rows given as columns, one value a row:

    * ``group``: the ``(scope, message id)`` group's code, -1 for a line without message id;
    * ``file_rank``: the file's rank in path order (ccusage's file order);
    * ``generation``, ``offset``: the line's place in its file;
    * ``current``: whether the line is of its file's current generation (others never count);
    * ``request``: the request id's code, -1 for none;
    * ``sidechain``, ``speed`` (the line has one): booleans; ``total``: its tokens (UInt64).

    As ``decide``, a line given twice (same file, generation and offset) is one, the first.
    """
    rows = np.flatnonzero(np.asarray(current, dtype=bool))
    file_rank, offset = np.asarray(file_rank), np.asarray(offset)
    generation = np.asarray(generation)
    rows = rows[np.lexsort((rows, offset[rows], generation[rows], file_rank[rows]))]
    if len(rows) > 1:
        place = (file_rank[rows], generation[rows], offset[rows])
        same = np.logical_and.reduce([p[1:] == p[:-1] for p in place])
        rows = rows[np.concatenate(([True], ~same))]
    # ccusage's order from here on: by file, then offset (then as given: two generations of a
    # file count together only when the caller gave no current one).
    rows = rows[np.lexsort((rows, offset[rows], file_rank[rows]))]
    group = np.asarray(group)
    codes = group[rows]
    loose = rows[codes < 0]
    grouped = rows[codes >= 0]
    grouped = grouped[np.argsort(group[grouped], kind="stable")]  # each group in ccusage's order
    empty = np.empty(0, np.int64)
    if not len(grouped):
        return Decided(loose.astype(np.int64), loose.astype(np.int64), empty)
    codes = group[grouped]
    first = np.concatenate(([True], codes[1:] != codes[:-1]))
    starts = np.flatnonzero(first)
    run = np.cumsum(first) - 1  # each row's group, numbered in order
    requests = np.asarray(request)[grouped]
    low = np.minimum.reduceat(requests, starts)
    one_request = (low == np.maximum.reduceat(requests, starts)) & (low >= 0)
    here = one_request[run]
    mine = np.flatnonzero(here)  # positions in ``grouped``, ccusage's order within each group
    side = np.asarray(sidechain, dtype=bool)[grouped[mine]]
    tokens = np.asarray(total, dtype=np.uint64)[grouped[mine]]
    fast = np.asarray(speed, dtype=bool)[grouped[mine]]
    # Best first within each group: not sidechain, more tokens, has speed, then earliest.
    best = mine[np.lexsort((mine, ~fast, ~tokens, side, run[mine]))]
    heads = np.ones(len(best), dtype=bool)
    heads[1:] = run[best[1:]] != run[best[:-1]]
    winners = grouped[best[heads]]
    slots = grouped[starts[run[best[heads]]]]
    return Decided(
        np.concatenate((loose, winners)).astype(np.int64),
        np.concatenate((loose, slots)).astype(np.int64),
        grouped[~here].astype(np.int64),
    )
