"""Garbage collection in kins' long-running processes (the daemon, ``kins agent``).

A full collection scans every live object — the store's, the informers' caches, a thousand
pods' worth — and its pause (50 to 150 ms with 1,000 pods and 1,000 policies) lands on whatever
agent sync runs at that moment. Once a minute the survivors of a full collection are frozen
(``gc.freeze``): the collector's routine passes then scan only what is newer. Unfreezing first
keeps cycles among older objects collectable: the one deliberate full pass a minute replaces
the ones Python would start at random moments.
"""

from __future__ import annotations

import gc
import threading

SETTLE_EVERY = 60.0  # seconds


def settle() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def settle_periodically(stop: threading.Event, every: float = SETTLE_EVERY) -> threading.Thread:
    """A daemon thread that settles the heap every ``every`` seconds until ``stop`` is set."""

    def run() -> None:
        while not stop.wait(every):
            settle()

    t = threading.Thread(target=run, name="kins-heap", daemon=True)
    t.start()
    return t
