"""The worker's watchdog threads are kept between runs (``worker.loop.Watchers``)."""

from __future__ import annotations

import threading

from egress.worker.loop import Watchers


def test_a_watch_thread_serves_the_next_run_once_its_run_ended() -> None:
    seen: list[tuple[str, int | None]] = []
    watchers = Watchers(lambda run: seen.append((run, threading.get_ident())))
    for run in ("a", "b", "c"):
        assert watchers.watch(run).wait(5)
    assert [run for run, _ in seen] == ["a", "b", "c"]
    assert len({name for _, name in seen}) == 1


def test_runs_watched_at_once_have_a_thread_each() -> None:
    first_in, release = threading.Event(), threading.Event()
    threads: dict[str, threading.Thread] = {}

    def watch(run: str) -> None:
        threads[run] = threading.current_thread()
        if run == "long":
            first_in.set()
            release.wait(5)

    watchers = Watchers(watch)
    long = watchers.watch("long")
    assert first_in.wait(5)
    assert watchers.watch("short").wait(5)  # not queued behind the long watch
    assert not long.is_set()
    release.set()
    assert long.wait(5)
    assert threads["long"] is not threads["short"]


def test_a_failing_watch_leaves_its_thread_serving() -> None:
    calls: list[str] = []

    def watch(run: str) -> None:
        calls.append(run)
        if run == "bad":
            raise RuntimeError("boom")

    watchers = Watchers(watch)
    assert watchers.watch("bad").wait(5)
    assert watchers.watch("good").wait(5)
    assert calls == ["bad", "good"]


def test_a_watch_thread_idle_for_long_ends_and_the_next_run_gets_a_new_one() -> None:
    threads: list[threading.Thread] = []
    watchers = Watchers(lambda: threads.append(threading.current_thread()), idle_s=0.05)
    assert watchers.watch().wait(5)
    threads[0].join(5)
    assert not threads[0].is_alive()
    assert watchers.watch().wait(5)
    assert threads[1] is not threads[0]
