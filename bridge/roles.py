"""Roles a token can carry, and what each may do in the foundation (the full matrix grows here)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    HALL = "hall"  # the main hall feed publisher (console machine)
    TECHNICIAN = "technician"  # main hall console: sees every site
    MODERATOR = "moderator"  # runs the meeting
    SITE = "site"  # a remote bridge point's operator
    OBSERVER = "observer"  # watches the program, sends nothing

    @property
    def needs_site(self) -> bool:
        """Roles bound to one roster entry (the hall publishes as the roster's hall site)."""
        return self in (Role.SITE, Role.HALL)

    @property
    def publishes(self) -> bool:
        return self in (Role.SITE, Role.HALL)

    @property
    def receives_program(self) -> bool:
        """Everyone: the hall too shows and plays a remote site that has the floor."""
        return True
