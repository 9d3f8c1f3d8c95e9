"""Reading raw rating tables (one rating per row) into the tidy frame of :mod:`.opinion`.

A raw rating table is a CSV with a header row and the columns of :mod:`.opinion`'s tidy layout
(``submission``, ``subject``, ``item``, ``dimension``, ``rating``, ``timestamp``; which are
required depends on the study design). Every cell is checked as it is read, so a bad table
stops with the file, line and column of the first problem instead of losing rows:

- a key column (``submission``, ``subject``, ``item``, ``dimension``) must not be empty, and
  ``dimension`` must be one the design rates;
- ``rating`` must be a number or empty (an empty rating is a missing one, which the YT-NTU-AVQ
  screening counts against its submission and the SFQA processing drops with a warning);
- ``timestamp``, when present, must be a number or an ISO date-time.

A hidden-reference table (``item``, ``level`` 0-4 and optionally ``dimension``) names items
whose quality level is known beforehand (:func:`.opinion.reject_far_from_reference`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from avpretrain.data.tables import read_table

KEY_COLUMNS = ("submission", "subject", "item", "dimension")


def _number(value: str, column: str, where: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"{where}: column {column}: {value!r} is not a number") from None
    if math.isinf(x):
        raise ValueError(f"{where}: column {column}: {value!r} is not finite")
    return x


def _timestamp(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return pd.Timestamp(value).timestamp()
    except ValueError:
        raise ValueError(
            f"{where}: column timestamp: {value!r} is neither a number nor a date-time"
        ) from None


def read_ratings(
    path: str | Path,
    required: Sequence[str],
    dimensions: Sequence[str] | None,
    default_dimension: str | None = None,
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """A raw rating table as a tidy frame, every cell checked.

    Args:
        path: CSV with a header row.
        required: columns the header must hold (``rating`` and ``item`` always are).
        dimensions: the dimensions the design rates; another value is an error.
        default_dimension: the dimension of every row when the table has no ``dimension``.
        extra: further columns carried over as stripped text when the table has them.

    Returns:
        One row per rating: the key columns present, ``rating`` (float, NaN when empty),
        ``timestamp`` (float) when present, the ``extra`` columns present, and ``where`` (``file:line``, for messages).

    Raises:
        ValueError: naming the file, line and column of the first bad cell.
    """
    needed = list(dict.fromkeys(["item", "rating", *required]))
    rows = read_table(path, needed, f"a raw rating table with columns {needed}")
    if not rows:
        raise ValueError(f"{path}: no ratings")
    has = set(rows[0][1])
    keys = [c for c in KEY_COLUMNS if c in has]
    records = []
    for where, row in rows:
        record: dict[str, object] = {"where": where}
        for column in keys:
            value = (row[column] or "").strip()
            if not value:
                raise ValueError(f"{where}: column {column} is empty")
            record[column] = value
        if "dimension" not in has:
            record["dimension"] = default_dimension
        elif dimensions is not None and record["dimension"] not in dimensions:
            raise ValueError(
                f"{where}: column dimension: {record['dimension']!r} is not one of {list(dimensions)}"
            )
        rating = (row["rating"] or "").strip()
        record["rating"] = _number(rating, "rating", where) if rating else math.nan
        if "timestamp" in has:
            record["timestamp"] = _timestamp((row["timestamp"] or "").strip(), where)
        record.update({c: (row[c] or "").strip() for c in extra if c in has})
        records.append(record)
    return pd.DataFrame(records)


def read_reference(path: str | Path) -> dict[str | None, dict[str, int]]:
    """Hidden-reference levels: ``{dimension or None (every dimension): {item: level}}``.

    Raises:
        ValueError: a level that is not an integer 0-4, or an item listed twice, naming the
            file, line and column.
    """
    out: dict[str | None, dict[str, int]] = {}
    seen: dict[tuple[str | None, str], str] = {}
    for where, row in read_table(path, ("item", "level"), "columns item, level (0-4)"):
        item = (row["item"] or "").strip()
        if not item:
            raise ValueError(f"{where}: column item is empty")
        dimension = (row.get("dimension") or "").strip() or None
        level = _number((row["level"] or "").strip(), "level", where)
        if not (level.is_integer() and 0 <= level <= 4):
            raise ValueError(f"{where}: column level: {row['level']!r} is not a level 0-4")
        if (dimension, item) in seen:
            raise ValueError(f"{where}: item {item} already listed at {seen[dimension, item]}")
        seen[dimension, item] = where
        out.setdefault(dimension, {})[item] = int(level)
    return out
