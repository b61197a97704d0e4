"""Reading a tool's description from its docstring (Google style).

The summary is everything before the first section header (``Args:``,
``Returns:``, ``Raises:``, ``Example:``, ...); the ``Args:`` section gives
each parameter's description, continuation lines included. Pure and sync.
"""

from __future__ import annotations

import inspect
import re
from typing import Final

__all__ = ["parse_docstring"]

_SECTION: Final = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|"
    r"Attributes|Cancellation|Warnings?|See Also|Todo)\s*:\s*$",
    re.IGNORECASE,
)
_ARG: Final = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The summary of *doc*, and its ``Args:`` descriptions by parameter name.

    Example:
      >>> parse_docstring('''Current weather.
      ...
      ...     Args:
      ...         city: the city's name,
      ...             as people write it.
      ...         units (str): c or f.
      ...     ''')
      ('Current weather.', {'city': "the city's name, as people write it.", 'units': 'c or f.'})
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        header = _SECTION.match(stripped) if line == line.lstrip() else None
        if header:
            section = header.group(1).lower()
            indent = None
            current = None
            continue
        if section is None:
            summary.append(line)
            continue
        if section not in ("args", "arguments", "parameters", "params") or not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        match = _ARG.match(stripped) if depth <= indent else None
        if match:
            current = match.group(1)
            args[current] = match.group(2).strip()
        elif current is not None:
            args[current] = f"{args[current]} {stripped}".strip()
    return "\n".join(summary).strip(), args
