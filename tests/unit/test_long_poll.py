"""``until_changed`` (the ``?wait=`` long poll of a request's status): answered on a change,
or with the last status when the wait ends, or at once when every slot is taken."""

from __future__ import annotations

import asyncio

from egress.api.long_poll import TICK_S, WaitSlots, until_changed


class Store:
    """A status that changes after ``changes_after`` reads, and a version that moves with it
    (None: a version that is never known)."""

    def __init__(self, changes_after: int | None, versioned: bool = True) -> None:
        self.reads = 0
        self.looks = 0
        self._after = changes_after
        self._versioned = versioned

    async def read(self) -> str:
        self.reads += 1
        return self.status()

    def status(self) -> str:
        return "Completed" if self._after is not None and self.reads > self._after else "Pending"

    def looked_at(self) -> object | None:
        """``version``, counted in ``looks``."""
        self.looks += 1
        return self.version()

    def version(self) -> object | None:
        if not self._versioned:
            return None
        # Moves once the status would change: the next read sees it.
        return 1 if self._after is not None and self.reads >= self._after else 0


def _wait(store: Store, wait_s: float, slots: WaitSlots | None = None) -> str:
    return asyncio.run(
        until_changed(store.read, _same, wait_s, store.version, slots or WaitSlots())
    )


def _same(status: str) -> str:
    return status


def test_a_change_answers_before_the_wait_ends() -> None:
    store = Store(changes_after=1)
    one = WaitSlots(limit=1)
    assert _wait(store, 30, one) == "Completed"
    assert store.reads == 2  # read again only once the version moved
    assert one.enter()  # the waiter gave its slot back


def test_no_change_answers_the_status_when_the_wait_ends() -> None:
    store = Store(changes_after=None)
    assert _wait(store, 0.05) == "Pending"
    assert store.reads == 1  # the version never moved: never read again


def test_an_unknown_version_reads_again_now_and_then() -> None:
    store = Store(changes_after=1, versioned=False)
    assert _wait(store, 30) == "Completed"


def test_no_wait_and_a_full_cap_answer_at_once() -> None:
    assert _wait(Store(changes_after=1), 0) == "Pending"
    full = WaitSlots(limit=1)
    assert full.enter()
    store = Store(changes_after=1)
    assert _wait(store, 30, full) == "Pending"
    assert store.reads == 1


def test_a_plain_poll_reads_the_status_once_and_not_the_version() -> None:
    store = Store(changes_after=None)
    answer = asyncio.run(until_changed(store.read, _same, 0, store.looked_at, WaitSlots()))
    assert (answer, store.reads, store.looks) == ("Pending", 1, 0)  # a poll costs one read only


def test_a_settled_answer_is_given_at_once() -> None:
    store = Store(changes_after=None)
    finished = asyncio.run(
        until_changed(store.read, _same, 0.2, store.looked_at, WaitSlots(), lambda s: True)
    )
    assert (finished, store.reads, store.looks) == ("Pending", 1, 1)  # never held
    asyncio.run(until_changed(store.read, _same, 0.2, store.looked_at, WaitSlots()))
    assert store.looks > 2  # not settled: the version is looked at while it waits


def test_waiters_share_one_look_at_the_version_per_tick() -> None:
    store = Store(changes_after=None)

    async def twenty() -> list[str]:
        wait = until_changed
        waits = [wait(store.read, _same, 0.2, store.looked_at, WaitSlots()) for _ in "x" * 20]
        return await asyncio.gather(*waits)

    assert asyncio.run(twenty()) == ["Pending"] * 20
    # One look per request before its read, then one per tick for all of them (0.2 s of
    # 5 ms ticks: 40 at most), where a look per waiter and tick would be 800.
    assert store.looks <= 20 + 1 + 0.2 / TICK_S


def test_a_change_answers_every_waiter() -> None:
    status, version, reads = ["Pending"], [0], []

    async def read() -> str:
        reads.append(status[0])
        return status[0]

    def looked_at() -> int:  # one source for all the waiters, as a process's cache is
        return version[0]

    async def change_later() -> str:
        await asyncio.sleep(0.05)
        status[0], version[0] = "Completed", 1
        return "changed"

    async def ten() -> list[str]:
        waits = [until_changed(read, _same, 30, looked_at, WaitSlots()) for _ in "x" * 10]
        return await asyncio.gather(*waits, change_later())

    assert asyncio.run(ten()) == ["Completed"] * 10 + ["changed"]
    assert reads.count("Pending") == 10 and reads.count("Completed") == 10
