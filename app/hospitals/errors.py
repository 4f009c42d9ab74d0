"""The hospitals domain's errors: the lead engine raises them, and each route answers them in its
standard's own shape (Lead Safe's 412 "Address outside of Chicago", a CDS Hooks card)."""

from __future__ import annotations


class OutsideArea(Exception):
    """The home is not in the city's service area (or its address is not one the resolver knows)."""

    def __init__(self, not_found: bool) -> None:
        super().__init__("address not found" if not_found else "outside the service area")
        self.not_found = not_found
