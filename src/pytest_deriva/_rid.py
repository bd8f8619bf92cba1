"""Resource identifiers (RIDs): the ERMrest base-32 form, validation and encoding."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

from pytest_deriva.exceptions import DerivaMLValidationError

__all__ = ["DRY_RUN_RID", "RID", "decode_rid", "encode_rid", "is_rid", "rid_order", "split_snapshot", "validate_rid"]

_BLOCK = r"[A-Z0-9]{1,4}(?:-[A-Z0-9]{4})*"
RID_PATTERN = rf"^{_BLOCK}(?:@{_BLOCK})?$"
_RID_RE = re.compile(RID_PATTERN)

#: A catalog-wide row identifier such as ``1-ABCD`` (optionally ``@snapshot``).
RID = Annotated[str, StringConstraints(pattern=RID_PATTERN)]

#: The RID that dry runs use for executions and workflows; nothing is written for it.
DRY_RUN_RID = "0000"

# Crockford base 32, as ERMrest uses for RIDs.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUES = {c: i for i, c in enumerate(_ALPHABET)}


def encode_rid(number: int) -> str:
    """Encode a positive integer as a RID: base 32, grouped by four from the right."""
    if number < 0:
        raise ValueError(f"RID numbers are not negative: {number}")
    digits = ""
    while True:
        number, rem = divmod(number, 32)
        digits = _ALPHABET[rem] + digits
        if not number:
            break
    groups: list[str] = []
    while len(digits) > 4:
        groups.insert(0, digits[-4:])
        digits = digits[:-4]
    groups.insert(0, digits)
    return "-".join(groups)


def decode_rid(rid: str) -> int:
    """Invert :func:`encode_rid` (without a snapshot suffix)."""
    value = 0
    for c in rid.replace("-", ""):
        digit = _VALUES.get(c)
        if digit is None:
            raise DerivaMLValidationError(f"{rid!r} is not a RID of this catalog: {c!r} is not a RID digit.")
        value = value * 32 + digit
    return value


def is_rid(value: object) -> bool:
    """Whether ``value`` is a string in RID form."""
    return isinstance(value, str) and bool(_RID_RE.fullmatch(value))


def validate_rid(value: object) -> str:
    """Return ``value`` if it is a RID, else raise a clear :class:`DerivaMLValidationError`."""
    if not is_rid(value):
        raise DerivaMLValidationError(
            f"{value!r} is not a RID. RIDs are upper-case base-32 groups such as '1-ABCD' or '3JSE' "
            "(optionally '@<snapshot>'); copy it from the catalog record."
        )
    return str(value)


def split_snapshot(rid: str) -> tuple[str, str | None]:
    """Split ``1-ABCD@2-XYZ0`` into ``("1-ABCD", "2-XYZ0")``."""
    base, _, snap = rid.partition("@")
    return base, snap or None


def rid_order(rid: str) -> tuple[int, str]:
    """Sort key putting RIDs in the order they were issued (Crockford digits sort as characters)."""
    digits = rid.partition("@")[0].replace("-", "")
    return len(digits), digits
