"""Spreadsheets of bookings as the channels export them, built in memory for tests and benchmarks.

Each builder takes rows as dicts keyed by the header the layout uses; a header the layout does not have becomes an
extra column, a missing key (or None) an empty cell, and `{}` a blank row. Values keep their type: str is a text
cell, int/float a number, bool a boolean, date/datetime an Excel date cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import xlsxwriter

from cosmo.imports.spreadsheet import TEMPLATE_COLUMNS

AIRBNB_COLUMNS = [
    "Confirmation code",
    "Status",
    "Guest name",
    "Contact",
    "# of adults",
    "# of children",
    "# of infants",
    "Start date",
    "End date",
    "# of nights",
    "Booked",
    "Listing",
    "Earnings",
]
BOOKING_COM_COLUMNS = [
    "Book number",
    "Booked by",
    "Guest name(s)",
    "Check-in",
    "Check-out",
    "Booked on",
    "Status",
    "Adults",
    "Children",
    "Price",
    "Commission %",
    "Unit type",
    "Duration (nights)",
]
SCHEDULE_COLUMNS = ["Properties", "Unit", "Airbnb/VRBO", "Guest", "Arrival", "Departure", "Price", "Notes"]
COSMO_COLUMNS = TEMPLATE_COLUMNS  # Cosmo's own template: the API's field names
_WORKBOOK_OPTIONS = {"strings_to_urls": False, "strings_to_formulas": False}


def _headers(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> list[str]:
    headers = list(columns)
    for row in rows:
        headers += [key for key in row if key not in headers]
    return headers


def xlsx(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    sheet_name: str = "Sheet1",
    other_sheets: Sequence[str] = (),
) -> bytes:
    """A workbook whose sheet `sheet_name` holds `rows` under `columns` (+ any extra keys) from its first row;
    `other_sheets` are empty sheets after it."""
    headers = _headers(columns, rows)
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {**_WORKBOOK_OPTIONS, "in_memory": True})
    day_format = book.add_format({"num_format": "yyyy-mm-dd"})
    moment_format = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet = book.add_worksheet(sheet_name)
    sheet.write_row(0, 0, headers)
    for row_index, row in enumerate(rows, start=1):
        for col, header in enumerate(headers):
            value = row.get(header)
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row_index, col, value)
            elif isinstance(value, datetime):
                sheet.write_datetime(row_index, col, value, moment_format)
            elif isinstance(value, date):
                sheet.write_datetime(row_index, col, value, day_format)
            elif isinstance(value, int | float):
                sheet.write_number(row_index, col, value)
            else:
                sheet.write_string(row_index, col, str(value))
    for name in other_sheets:
        book.add_worksheet(name)
    book.close()
    return buffer.getvalue()


def to_csv(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    encoding: str = "utf-8",
    bom: bool = False,
    delimiter: str = ",",
) -> bytes:
    """The same table as CSV text: dates as ISO, None as an empty field."""
    headers = _headers(columns, rows)
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if row.get(h) is None else _csv_text(row[h]) for h in headers])
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode(encoding)


def _csv_text(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def airbnb_xlsx(rows: Sequence[Mapping[str, Any]], **options: Any) -> bytes:
    return xlsx(AIRBNB_COLUMNS, rows, **options)


def booking_com_xlsx(rows: Sequence[Mapping[str, Any]], **options: Any) -> bytes:
    return xlsx(BOOKING_COM_COLUMNS, rows, **options)


def schedule_xlsx(rows: Sequence[Mapping[str, Any]], **options: Any) -> bytes:
    return xlsx(SCHEDULE_COLUMNS, rows, **options)


def cosmo_xlsx(rows: Sequence[Mapping[str, Any]], **options: Any) -> bytes:
    return xlsx(COSMO_COLUMNS, rows, **options)


def airbnb_csv(rows: Sequence[Mapping[str, Any]], **options: Any) -> bytes:
    return to_csv(AIRBNB_COLUMNS, rows, **options)


def airbnb_row(**values: Any) -> dict[str, Any]:
    """A plausible Airbnb export row; keyword names are the headers with spaces and `#` as in `guest_name`,
    `start_date`, `of_adults` (or pass a dict of headers to `airbnb_row(**{"Guest name": ...})`)."""
    row: dict[str, Any] = {
        "Confirmation code": "HMABCDEF12",
        "Status": "Confirmed",
        "Guest name": "Ana Silva",
        "Contact": "+351 912 345 678",
        "# of adults": 2,
        "# of children": 0,
        "# of infants": 0,
        "Start date": "09/10/2025",
        "End date": "09/14/2025",
        "# of nights": 4,
        "Booked": "2025-08-01",
        "Listing": "Alfama",
        "Earnings": "$1,020.00",
    }
    by_key = {header.lower().replace("#", "").strip().replace(" ", "_"): header for header in row}
    for key, value in values.items():
        row[by_key.get(key, key)] = value
    return row


def generated_airbnb_xlsx(n_rows: int, properties: list[str], units_per_property: int) -> bytes:
    """`n_rows` Airbnb-style rows (plus a `Unit` column) spread over every unit of `properties`, none overlapping:
    each unit's stays follow one another, three nights each with a free night between."""
    units = [(name, str(unit)) for name in properties for unit in range(1, units_per_property + 1)]
    first = date(2026, 1, 1)
    buffer = io.BytesIO()
    # constant_memory streams each row to a temporary file as it is written (in_memory would turn it off): memory
    # stays flat, and rows need no per-cell bookkeeping.
    book = xlsxwriter.Workbook(buffer, {**_WORKBOOK_OPTIONS, "constant_memory": True})
    sheet = book.add_worksheet("Reservations")
    sheet.write_row(0, 0, [*AIRBNB_COLUMNS, "Unit"])
    statuses = ("Confirmed", "Confirmed", "Confirmed", "Past guest", "Canceled by guest")
    for index in range(n_rows):
        listing, unit = units[index % len(units)]
        start = first + timedelta(days=4 * (index // len(units)))
        end = start + timedelta(days=3)
        cents = 30_000 + (index * 7919) % 200_000
        sheet.write_row(
            index + 1,
            0,
            [
                f"HM{index:08d}",
                statuses[index % len(statuses)],
                f"Guest {index}",
                f"guest{index}@example.com",
                1 + index % 4,
                index % 3,
                index % 2,
                f"{start.month:02d}/{start.day:02d}/{start.year}",
                f"{end.month:02d}/{end.day:02d}/{end.year}",
                3,
                (start - timedelta(days=30)).isoformat(),
                listing,
                f"${cents // 100:,}.{cents % 100:02d}",
                unit,
            ],
        )
    book.close()
    return buffer.getvalue()
