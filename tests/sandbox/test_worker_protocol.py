"""The worker's side of the protocol: frames off its pipe, and the garbage each evaluation leaves."""

from __future__ import annotations

import gc
import os
import threading
import weakref
from collections.abc import Iterator

import pytest

from sandbox.worker import GarbageCollector, len_prefixed, read_frame


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


def test_a_frame_is_read_whole_however_the_writer_splits_it(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    frame = len_prefixed(b"x" * 200_000)  # more than a pipe holds: the reader must come back
    pieces = [frame[:2], frame[2:7], frame[7:100_000], frame[100_000:]]

    def write() -> None:
        for piece in pieces:
            os.write(write_fd, piece)

    writer = threading.Thread(target=write)
    writer.start()
    body = read_frame(read_fd)
    writer.join()

    assert body == b"x" * 200_000


def test_bytes_after_a_frame_are_a_protocol_violation(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, len_prefixed(b"{}") + len_prefixed(b"abc")[:5])
    os.close(write_fd)

    with pytest.raises(ValueError, match="bytes after the frame"):
        read_frame(read_fd)  # the parent never sends a second frame before the reply


def test_a_stream_that_ends_inside_a_frame_or_announces_too_much_is_refused(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, (10).to_bytes(4, "big") + b"abc")
    os.close(write_fd)
    with pytest.raises(EOFError):
        read_frame(read_fd)

    other_read, other_write = os.pipe()
    try:
        os.write(other_write, (1 << 30).to_bytes(4, "big"))
        with pytest.raises(ValueError, match="frame of"):
            read_frame(other_read, max_bytes=1 << 20)
        os.close(other_write)
        assert read_frame(other_read) is None
    finally:
        os.close(other_read)


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector() -> Iterator[GarbageCollector]:
    collector = GarbageCollector()
    yield collector
    gc.callbacks.remove(collector._on_collection)


@pytest.mark.parametrize("automatic", [None, 0, 1, 2])
def test_a_cycle_an_evaluation_left_is_freed_whichever_generation_it_reached(
        collector: GarbageCollector, automatic: int | None) -> None:
    collector.after_evaluation()
    node = _Node()
    freed = weakref.ref(node)
    if automatic is not None:
        gc.collect(automatic)  # as the collector does on its own during an evaluation: the live cycle moves up
    del node

    collector.after_evaluation()

    assert freed() is None


def test_an_evaluation_without_automatic_collections_costs_a_young_collection_only(
        collector: GarbageCollector) -> None:
    collector.after_evaluation()
    oldest = [stats["collections"] for stats in gc.get_stats()]
    gc.disable()  # nothing else in this process may collect meanwhile
    try:
        collector.after_evaluation()
    finally:
        gc.enable()

    after = [stats["collections"] for stats in gc.get_stats()]
    assert [after[i] - oldest[i] for i in range(3)] == [1, 0, 0]
