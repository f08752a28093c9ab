"""The files of a daily snapshot: one CSV per table, the same tables in one JSON document with the schema
version, and the HTML report."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date
from typing import Any

from metrics_snapshot import SCHEMA_VERSION
from metrics_snapshot.tables import COLUMNS, Row

DECIMALS = 6


def number(value: Any) -> Any:
    """Numbers rounded to 6 decimals (integral ones as integers); None and strings unchanged."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        rounded = round(value, DECIMALS)
        return int(rounded) if rounded.is_integer() else rounded
    return value


def to_csv(table: str, rows: list[Row]) -> bytes:
    """A table as CSV with a header line; empty cells for missing values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS[table])
    for row in rows:
        writer.writerow(["" if (v := number(row.get(c))) is None else v for c in COLUMNS[table]])
    return out.getvalue().encode()


def to_json(day: date, meta: dict[str, Any], tables: dict[str, list[Row]]) -> bytes:
    """Every table in one document: schema_version, the day and where it came from, then the rows."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "day": day.isoformat(),
        **meta,
        "columns": {name: list(COLUMNS[name]) for name in tables},
        "tables": {name: [{c: number(row.get(c)) for c in COLUMNS[name]} for row in rows]
                   for name, rows in tables.items()},
    }
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()
