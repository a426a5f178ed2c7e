"""Learnware statuses (the reference's magic ints -1/0/1 made explicit)."""

from __future__ import annotations

from enum import Enum

__all__ = ["Status"]


class Status(str, Enum):
    """Outcome of a submission or re-check.

    USABLE: validated, runs in its runtime, spec verified. NONUSABLE: a valid package whose model does not run
    correctly (crash, timeout, wrong shapes); kept with its reason so a re-check can revive it. INVALID: rejected
    at validation (unsafe or malformed zip, bad manifest or specs); nothing is stored.
    """

    USABLE = "USABLE"
    NONUSABLE = "NONUSABLE"
    INVALID = "INVALID"

    @property
    def reference_code(self) -> int:
        return {"USABLE": 1, "NONUSABLE": 0, "INVALID": -1}[self.value]
