"""One process, several threads (a batch submission's workers): a reader waits for a sibling's writable open."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from lwlib.catalog import Catalog


def test_a_read_only_open_waits_for_another_threads_writer(tmp_path: Path) -> None:
    path = tmp_path / "catalog.duckdb"
    with Catalog.open(path):  # create and migrate
        pass
    opened, release = threading.Event(), threading.Event()

    def writer() -> None:
        with Catalog.open(path):
            opened.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    assert opened.wait(30)
    threading.Timer(0.3, release.set).start()  # the writer's "transaction" ends while the reader retries
    started = time.monotonic()
    with Catalog.open(path, read_only=True) as cat:
        assert cat.count() == 0
    t.join(30)
    assert time.monotonic() - started >= 0.2  # it did wait for the writer instead of failing at once
