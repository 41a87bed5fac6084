"""``ingestor up``'s restart policy (``local/restarts.py``), on a fake clock."""

from __future__ import annotations

from ingestor.local.restarts import RestartPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_to_its_cap_then_gives_up() -> None:
    clock = Clock()
    policy = RestartPolicy(limit=6, base_s=1, max_s=8, healthy_s=60, clock=clock)
    delays = []
    for _ in range(7):
        policy.started()
        clock.now += 1  # dies at once
        delays.append(policy.next_delay())
    assert delays == [1, 2, 4, 8, 8, 8, None]


def test_a_child_that_ran_healthy_starts_counting_again() -> None:
    clock = Clock()
    policy = RestartPolicy(limit=2, base_s=1, max_s=8, healthy_s=60, clock=clock)
    policy.started()
    assert policy.next_delay() == 1
    policy.started()
    assert policy.next_delay() == 2
    policy.started()
    clock.now += 61
    assert policy.next_delay() == 1
