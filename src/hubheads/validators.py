"""Validators shared by the commands and the Python API: one function per kind of input, each raising a `ValueError`
that names the option (or config key) and what to give instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubheads.errors import InvalidInputError


def check_whole_numbers(options: Mapping[str, Any], minimum: int = 1) -> None:
    """Each of `options` (option name → value) is an int >= `minimum`, else a `ValueError` naming the option."""
    for option, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidInputError(f"{option} must be a whole number >= {minimum}, got {value!r}.")


__all__ = ["check_whole_numbers"]
