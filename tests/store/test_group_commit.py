"""Group commit: concurrent callers share writes, each gets its own result or error."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from monitor.store.group_commit import GroupCommit, Request


class _Writer:
    """Doubles numbers; refuses negative ones; the first write waits until released."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.first_started, self.release = threading.Event(), threading.Event()

    def __call__(self, requests: Sequence[Request[int, int]]) -> None:
        self.groups.append([r.item for r in requests])
        if len(self.groups) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        if any(r.item == 13 for r in requests):
            raise OSError("disk full")
        for r in requests:
            if r.item < 0:
                r.finish(error=ValueError(f"negative: {r.item}"))
            else:
                r.finish(r.item * 2)


def _submit_all(commit: GroupCommit[int, int], items: list[int]) -> dict[int, object]:
    outcomes: dict[int, object] = {}

    def run(item: int) -> None:
        try:
            outcomes[item] = commit.submit(item)
        except Exception as exc:  # the outcome under test
            outcomes[item] = exc

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_callers_that_arrive_during_a_write_share_the_next_one_and_each_gets_its_result() -> None:
    writer = _Writer()
    commit: GroupCommit[int, int] = GroupCommit(writer)
    first = threading.Thread(target=commit.submit, args=(1,))
    first.start()
    assert writer.first_started.wait(10)
    outcomes: dict[int, object] = {}
    late = threading.Thread(target=lambda: outcomes.update(_submit_all(commit, [2, 3, -4, 5])))
    late.start()
    while len(commit._queue) < 4:  # all four queued behind the first write
        threading.Event().wait(0.01)
    writer.release.set()
    first.join(10)
    late.join(10)
    assert len(writer.groups) == 2 and writer.groups[0] == [1]
    assert sorted(writer.groups[1]) == [-4, 2, 3, 5]  # one write for the four
    assert {k: v for k, v in outcomes.items() if k > 0} == {2: 4, 3: 6, 5: 10}
    assert isinstance(outcomes[-4], ValueError)


def test_a_write_that_fails_fails_every_caller_of_its_group_and_the_next_group_goes_on() -> None:
    writer = _Writer()
    writer.release.set()
    commit: GroupCommit[int, int] = GroupCommit(writer)
    with pytest.raises(OSError, match="disk full"):
        commit.submit(13)
    assert commit.submit(21) == 42
    assert _submit_all(commit, [7, 8]) == {7: 14, 8: 16}
