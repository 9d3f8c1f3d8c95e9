"""Annotation tables (CSV or TSV with a header row), read strictly: a cut row is an error.

Shared by the converters (official annotation files -> manifests) and the quality task's rating
tables and MOS tool, so it sits below both.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path


def check_complete(path: str | Path, lines: int) -> None:
    """Refuse a text file whose last line has no line break: it may have been cut short.

    A download or copy cut inside the last row leaves a row that often still parses (``3.38``
    cut to ``3.3``, a label list cut after its first label) and would become a wrong label.
    Every tool that writes tables (csv, pandas, spreadsheets) ends the last row with a line
    break, so its absence is the one sign of such a cut.

    Args:
        path: the file.
        lines: its line count, for the ``file:line`` of the message.

    Raises:
        ValueError: naming the file and its last line.
    """
    with Path(path).open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
    if last not in (b"\n", b"\r"):
        raise ValueError(
            f"{path}:{lines}: the file ends inside its last row (no line break after it): it "
            f"may have been cut short (an interrupted download or copy). Get the file again; "
            f"if that row is complete, end the file with a line break"
        )


def read_table(
    path: str | Path, columns: Iterable[str], expected: str, delimiter: str = ","
) -> list[tuple[str, dict[str, str]]]:
    r"""``(file:line, row)`` pairs of a CSV with a header row, in file order.

    Every row must have as many fields as the header (blank lines are skipped) and the file must
    end with a line break (:func:`check_complete`), so a truncated or malformed row is an error
    rather than a row with missing or shortened values.

    Args:
        path: the file.
        columns: columns the header must hold (others may follow).
        expected: what the file should be, for the error message.
        delimiter: ``","``, or ``"\t"`` for tab-separated files.

    Raises:
        ValueError: a missing column (naming the file, its header and ``expected``), a row with
            too few or too many fields, or a malformed or cut row, naming the file and line.
    """
    path = Path(path)
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheet exports' BOM
        reader = csv.DictReader(f, delimiter=delimiter, strict=True)
        try:
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(
                    f"{path}: missing column(s) {missing} (header {header}); expected {expected}"
                )
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row or None in row.values():  # csv's marks of extra / missing
                    fields = sum(row.get(k) is not None for k in set(header))
                    fields += len(row.get(None) or [])
                    raise ValueError(
                        f"{where}: {fields} fields, the header has {len(header)} "
                        f"({', '.join(header)}): a cut or malformed row"
                    )
                rows.append((where, row))
        except csv.Error as err:
            line = reader.reader.line_num  # DictReader's own count lags behind on errors
            raise ValueError(f"{path}:{line}: malformed CSV row: {err}") from err
    check_complete(path, reader.line_num)
    return rows
