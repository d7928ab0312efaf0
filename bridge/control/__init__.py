"""Conference control: floor, mute, roll-call, agenda, audit and attendance (pure state machines).

Every change takes `now` (seconds, wall clock) and either applies completely or raises `Refused`
without changing anything.
"""

from __future__ import annotations


class Refused(Exception):
    """A command that cannot be applied: a stable code and a message for the person who asked."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
