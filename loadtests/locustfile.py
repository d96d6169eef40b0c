"""The three kinds of users of the site, for Locust's web UI (`make locust`, with --class-picker) or
headless. Pick by what you want to learn:

* Visitor (scenarios/visitor.py): read throughput and latency of the pages people read, through the
  edge, the origin or the app (``--host``); zero failures expected.
* Editor (scenarios/editor.py): that a change shows on the next read through the origin and within
  2 s through the edge while the others load the site; a low rate of writes.
* FlashBuyer (scenarios/flash_buyer.py): a flash-sale rush; after the run the sale's invariants are
  checked in the database (no oversell, the per-buyer limit, no duplicates, nothing lost).

Weights when all three run together: 20 visitors : 1 editor : 5 buyers.

    .venv/bin/locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 60s --host http://127.0.0.1:8081
"""

from __future__ import annotations

from scenarios.editor import Editor
from scenarios.flash_buyer import FlashBuyer
from scenarios.visitor import Visitor

__all__ = ["Editor", "FlashBuyer", "Visitor"]
