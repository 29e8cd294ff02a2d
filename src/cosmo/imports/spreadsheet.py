"""The spreadsheet reader of the bookings import: an uploaded .xlsx or .csv in, its bookings normalised and checked
out, with no database and no I/O.

Parsing and validation are polars expressions over whole columns, with no Python per row: a 100,000-row sheet
costs little more than fastexcel's own load. Each field yields its value and a message column (null when fine); a
row with any message is left out of `Sheet.rows` and reported in `Sheet.errors`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import fastexcel
import polars as pl
import xlsxwriter

from cosmo.domain.bookings import (
    CONTACT_MAX,
    EARNINGS_MAX,
    EXTERNAL_CODE_MAX,
    GUEST_NAME_MAX,
    NOTES_MAX,
    PEOPLE_MAX,
    SOURCES,
    STATUSES,
)
from cosmo.domain.checks import CONTROL_CHARACTERS, clean_text
from cosmo.domain.properties import NAME_MAX as PROPERTY_NAME_MAX
from cosmo.domain.properties import UNIT_NUMBER_MAX

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000

LAYOUTS = ("airbnb", "booking_com", "schedule", "cosmo")


class BadSpreadsheet(Exception):
    """The file as a whole cannot be imported; str(exc) is a message for the user (answered as a 400 on `file`)."""


@dataclass(frozen=True, slots=True)
class RowError:
    row_number: int  # as the spreadsheet shows it: the header is row 1, the first data row is 2
    # the API field name: guest_name, check_in_date, check_out_date, booked_at, earnings, status, source, adults,
    # children, infants, external_code, guest_contact, notes, unit, property
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Sheet:
    layout: str  # "airbnb" | "booking_com" | "schedule" | "cosmo"
    total_rows: int  # data rows in the file (blank rows skipped and not counted)
    rows: pl.DataFrame  # the valid rows only, columns as ROW_SCHEMA
    errors: list[RowError]  # sorted by row_number, then field


ROW_SCHEMA: dict[str, pl.DataType] = {
    "row_number": pl.Int64(),
    "source": pl.String(),
    "external_code": pl.String(),
    "status": pl.String(),
    "guest_name": pl.String(),
    "guest_contact": pl.String(),
    "adults": pl.Int64(),
    "children": pl.Int64(),
    "infants": pl.Int64(),
    "check_in": pl.String(),
    "check_out": pl.String(),
    "booked_at": pl.String(),
    "earnings": pl.String(),
    "earnings_currency": pl.String(),
    "property_name": pl.String(),
    "property_id": pl.Int64(),
    "unit": pl.String(),
    "notes": pl.String(),
}

# Cosmo's own template: the API's field names, so a row error names the column it is about.
TEMPLATE_COLUMNS = [
    "property",
    "unit",
    "guest_name",
    "guest_contact",
    "check_in_date",
    "check_out_date",
    "status",
    "source",
    "external_code",
    "adults",
    "children",
    "infants",
    "earnings",
    "earnings_currency",
    "booked_at",
    "notes",
]

# Header aliases per field; `unit_type` is Booking.com's room type, kept in the notes.
ALIASES: dict[str, tuple[str, ...]] = {
    "external_code": ("Confirmation code", "Book number", "Reservation code", "Booking code", "external_code"),
    "guest_name": ("Guest name", "Guest name(s)", "Guest", "guest_name"),
    "guest_contact": ("Contact", "Guest contact", "guest_contact"),
    "check_in": ("Start date", "Check-in", "Check in", "check_in_date", "Arrival"),
    "check_out": ("End date", "Check-out", "Check out", "check_out_date", "Departure"),
    "booked_at": ("Booked", "Booked on", "booked_at"),
    "status": ("Status",),
    "adults": ("# of adults", "adults"),
    "children": ("# of children", "children"),
    "infants": ("# of infants", "infants"),
    "earnings": ("Earnings", "Price", "earnings"),
    "earnings_currency": ("Currency", "earnings_currency"),
    "source": ("Booking source", "Airbnb/VRBO", "source"),
    "property": ("Listing", "Properties", "Property", "property", "property_name"),
    "unit": ("Unit", "Unit number", "unit"),
    "notes": ("Notes", "notes"),
    "unit_type": ("Unit type",),
}
REQUIRED = {"guest_name": "guest name", "check_in": "check-in date", "check_out": "check-out date"}
DEFAULT_SOURCE = {"airbnb": "airbnb", "booking_com": "booking_com", "schedule": "direct", "cosmo": "direct"}

_STATUS_WORDS = {
    "confirmed": "confirmed",
    "canceled by guest": "cancelled",
    "canceled by host": "cancelled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "past guest": "completed",
    "currently hosting": "currently_hosting",
    "pending": "booked",
    "request": "booked",
    "awaiting guest verification": "booked",
    "ok": "confirmed",
    "cancelled by guest": "cancelled",
    "cancelled by hotel": "cancelled",
    "no show": "cancelled",
} | {status.replace("_", " "): status for status in STATUSES}
_SOURCE_WORDS = {
    "airbnb": "airbnb",
    "vrbo": "vrbo",
    "homeaway": "vrbo",
    "booking.com": "booking_com",
    "booking": "booking_com",
    "booking com": "booking_com",
    "direct": "direct",
    "owner": "owner",
    "other": "other",
} | {source.replace("_", " "): source for source in SOURCES}
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}

_CONTROL = r"[\x00-\x1f\x7f-\x9f]"
# As literal characters for `str.contains_any` (Aho-Corasick), quicker than the regex over a whole column; what
# multi-line text may hold besides: tab, line feed, carriage return.
_CONTROL_CHARS = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
_CONTROL_CHARS_MULTILINE = [c for c in _CONTROL_CHARS if c not in "\t\n\r"]
# What follows an ISO date: a time (seconds optional, fraction dropped) and an offset, or nothing.
# `ok` is empty when the text is one, null when it is not.
_ISO_TIME = (
    r"^(?<ok>)(?:[T ](?<h>[0-9]{2}):(?<m>[0-9]{2})(?::(?<s>[0-9]{2})(?:[.,][0-9]+)?)?"
    r"\s*(?:(?<z>[Zz])|(?<sign>[+-])(?<oh>[0-9]{2})(?::?(?<om>[0-9]{2}))?)?)?$"
)
# An amount, with a currency symbol or code before or after it. Thousands are separated by commas only in threes,
# so that "126,63" (a decimal comma) is refused, not read as 12663.
_MONEY = (
    r"^\s*(?:(?<pre>[A-Za-z]{3})\s*)?(?<sym>[$€£])?\s*"
    r"(?<num>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:\s*(?<post>[A-Za-z]{3}))?\s*$"
)
_BINARY_BYTES = bytes([*range(0, 9), *range(14, 32), 127])
_EXCEL_EPOCH = datetime(1899, 12, 30)
_SERIAL_END = 2958466  # the Excel serial day after 9999-12-31
_EARNINGS_MAX_CENTS = int(EARNINGS_MAX * 100)

BAD_DATE = "Enter a date as MM/DD/YYYY or YYYY-MM-DD, or an ISO 8601 date and time such as 2025-09-10T15:00:00."
DATE_RANGE = "Enter a date between 1900-01-01 and 9998-12-31."
STAY_ORDER = "Check-out must be after check-in."
BLANK = "This field may not be blank."
BAD_AMOUNT = "Enter an amount such as 1020.50, $1,020.00 or 126.63 EUR; it may not be negative."
AMOUNT_RANGE = f"Ensure this value is at most {EARNINGS_MAX}."
BAD_CURRENCY = "Enter a three-letter ISO 4217 currency code, e.g. USD."
BAD_COUNT = f"Enter a whole number from 0 to {PEOPLE_MAX}."
BAD_PROPERTY_ID = "A property id must be a whole number from 1 to 999999999999999999."


def read_bookings(data: bytes, filename: str, sheet_name: str | None = None) -> Sheet:
    """The bookings of an uploaded spreadsheet; BadSpreadsheet when the file as a whole cannot be imported."""
    if not data:
        raise BadSpreadsheet("The file is empty.")
    if len(data) > MAX_BYTES:
        raise BadSpreadsheet(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        return _bookings(_read_table(data, filename, sheet_name))
    except (BadSpreadsheet, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a failure (or a Rust panic) on some value no check foresaw is no 500
        raise BadSpreadsheet("The spreadsheet could not be read.") from exc


def template_xlsx() -> bytes:
    """Cosmo's import template: TEMPLATE_COLUMNS as header, one example row, choice lists on status and source."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_urls": False, "strings_to_formulas": False})
    sheet = book.add_worksheet("Bookings")
    header = book.add_format({"bold": True})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, TEMPLATE_COLUMNS, header)
    example: dict[str, object] = {
        "property": "Alfama Loft",
        "unit": "1A",
        "guest_name": "Ana Silva",
        "guest_contact": "ana.silva@example.com",
        "check_in_date": date(2025, 9, 10),
        "check_out_date": date(2025, 9, 14),
        "status": "confirmed",
        "source": "direct",
        "external_code": "",
        "adults": 2,
        "children": 1,
        "infants": 0,
        "earnings": 1020.0,
        "earnings_currency": "EUR",
        "booked_at": date(2025, 8, 1),
        "notes": "Late arrival, around 22:00.",
    }
    for col, name in enumerate(TEMPLATE_COLUMNS):
        value = example[name]
        if isinstance(value, date):
            sheet.write_datetime(1, col, value, day)
        elif value != "":
            sheet.write(1, col, value)
        sheet.set_column(col, col, max(len(name) + 2, 14))
    for name, choices in (("status", STATUSES), ("source", SOURCES)):
        col = TEMPLATE_COLUMNS.index(name)
        sheet.data_validation(1, col, MAX_ROWS, col, {"validate": "list", "source": list(choices)})
    sheet.freeze_panes(1, 0)
    book.close()
    return buffer.getvalue()


# Reading the file into a table ---------------------------------------------------------------------------------


def _read_table(data: bytes, filename: str, sheet_name: str | None) -> pl.DataFrame:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    # An OLE compound file: what Excel writes for an encrypted workbook (whatever its name) and for an old .xls.
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") and extension in ("xlsx", "xlsm", "xls", "csv"):
        raise BadSpreadsheet(
            "This workbook is encrypted (password-protected) or in the old .xls format. "
            "Save it as an unencrypted .xlsx workbook or as .csv, and upload that."
        )
    if extension not in ("xlsx", "xlsm", "csv"):
        raise BadSpreadsheet("This is not a spreadsheet Cosmo can read: upload an .xlsx workbook or a .csv file.")
    # The content decides, not the name: a CSV saved as "bookings.xlsx" is still read.
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a zip (an empty one too): what an .xlsx is
        return _read_xlsx(data, sheet_name)
    text = _decoded(data)
    if text is None:
        raise BadSpreadsheet("This file is not a spreadsheet: upload an .xlsx workbook or a .csv file.")
    return _read_csv(text)


def _read_xlsx(data: bytes, sheet_name: str | None) -> pl.DataFrame:
    try:
        reader = fastexcel.read_excel(data)
        names = list(reader.sheet_names)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # fastexcel's Rust panics are BaseExceptions
        raise BadSpreadsheet("The workbook could not be opened: it is damaged or not really an .xlsx file.") from exc
    if not names:
        raise BadSpreadsheet("The workbook has no sheets.")
    if sheet_name is not None and sheet_name not in names:
        listed = ", ".join(f'"{clean_text(name)}"' for name in names[:50])
        raise BadSpreadsheet(f'The workbook has no sheet named "{clean_text(sheet_name)[:100]}". Its sheets: {listed}.')
    try:
        # Column types guessed from every row, not a sample: a column is text as soon as any cell is, so no cell
        # is lost to a type guessed from the first rows.
        table = reader.load_sheet(
            sheet_name if sheet_name is not None else 0, schema_sample_rows=None, whitespace_as_null=True
        ).to_polars()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise BadSpreadsheet("The sheet could not be read: the workbook may be damaged.") from exc
    return table


def _decoded(data: bytes) -> str | None:
    """The file as text when it reads as a CSV would: UTF-8 (with or without a BOM) or Windows-1252, hardly any
    control bytes near its start (a tenth of any binary file's bytes are; a text's, next to none) and a header line
    free of control characters."""
    head = data[:8000]
    if (len(head) - len(head.translate(None, _BINARY_BYTES))) * 100 > len(head):
        return None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        header = text.split("\n", 1)[0].rstrip("\r")
        if not header.strip() or any((ord(c) < 32 and c != "\t") or 0x7F <= ord(c) <= 0x9F for c in header):
            return None
        return text
    return None


def _read_csv(text: str) -> pl.DataFrame:
    header = text.split("\n", 1)[0]
    # Excel writes ";" where the decimal separator is a comma, and "Unicode text" exports use tabs.
    separator = max((",", ";", "\t"), key=header.count)
    try:
        table = pl.read_csv(
            text.encode(),
            infer_schema=False,
            separator=separator,
            truncate_ragged_lines=True,
            raise_if_empty=False,
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise BadSpreadsheet("The CSV file could not be read: check its quotes and separators.") from exc
    # As fastexcel's whitespace_as_null does for a workbook: an empty or all-space field is null.
    return table.select(pl.when(pl.col(c).str.contains(r"\S")).then(pl.col(c)).alias(c) for c in table.columns)


# Recognising the layout --------------------------------------------------------------------------------------


def _normal(header: str) -> str:
    return " ".join(header.replace("_", " ").lower().split())


def _columns(headers: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The layout, and the column that holds each field (the first, when several match)."""
    found = {_normal(h) for h in headers}
    if "confirmation code" in found:
        layout = "airbnb"
    elif "book number" in found:
        layout = "booking_com"
    elif "booking source" in found or "airbnb/vrbo" in found:
        layout = "schedule"
    else:
        layout = "cosmo"
    columns: dict[str, str] = {}
    for field, aliases in ALIASES.items():
        names = {_normal(a) for a in aliases}
        match = next((h for h in headers if _normal(h) in names), None)
        if match is not None:
            columns[field] = match
    missing = [field for field in REQUIRED if field not in columns]
    if missing:
        wanted = "; ".join(f"{REQUIRED[f]} ({', '.join(repr(a) for a in ALIASES[f][:4])})" for f in missing)
        shown = [f'"{clean_text(h)[:60]}"' for h in headers if not h.startswith("__UNNAMED__")][:40]
        have = ", ".join(shown) if shown else "none"
        raise BadSpreadsheet(f"The sheet is missing required columns: {wanted}. Columns found: {have}.")
    return layout, columns


# Parsing and validation --------------------------------------------------------------------------------------
#
# A cell is null when empty or all spaces. A workbook's columns come typed (text, number, date, or text when mixed);
# a CSV's are text. A column of few distinct values (dates, status, source, currency, property, unit) is parsed
# once per distinct value and joined back; the others (names, contacts, codes, notes, counts, amounts) by cheap
# whole-column expressions. Expressions run in stages, so that nothing is computed twice: neither an eager frame
# nor a `when` branch has its common subexpressions shared.

Stages = list[list[pl.Expr]]


def _bookings(raw: pl.DataFrame) -> Sheet:
    layout, columns = _columns(raw.columns)
    table = raw.select(
        # Numbered before the blank rows go, so the numbers stay those the spreadsheet shows.
        pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("row_number"),
        *(pl.col(name).alias(f"in_{field}") for field, name in columns.items()),
        pl.any_horizontal([pl.col(c).is_not_null() for c in raw.columns]).alias("filled"),
    )
    if not table.get_column("filled").all():
        table = table.filter(pl.col("filled"))
    table = table.drop("filled")
    total = table.height
    if total > MAX_ROWS:
        raise BadSpreadsheet(f"The file has {total:,} rows of bookings; import at most {MAX_ROWS:,} at a time.")
    table = table.with_columns(pl.lit(None, pl.String).alias(f"in_{f}") for f in ALIASES if f not in columns)
    schema = table.schema

    base = table.lazy()
    # Fields whose columns share one table of distinct values: parsed once, joined to each column.
    groups: list[tuple[tuple[str, ...], Stages]] = [
        (("check_in", "check_out", "booked_at"), _moment()),
        (("status",), _choice("status", _STATUS_WORDS, STATUSES)),
        (("source",), _choice("source", _SOURCE_WORDS, SOURCES)),
        (("earnings_currency",), _currency()),
        (("property",), _property()),
        (("unit",), _unit()),
    ]
    lookups = [
        (group, _distinct(base, [f"in_{f}" for f in group], schema[f"in_{group[0]}"], parse))
        for fields, parse in groups
        for group in _same_type(fields, columns, schema)
    ]
    # Each collect_all runs its independent queries side by side.
    found = dict(zip((group for group, _ in lookups), pl.collect_all([query for _, query in lookups]), strict=True))
    parts = [_staged(base, _row_fields(schema, has_unit_type="unit_type" in columns))]
    parts += [_joined(base, field, found[group]) for group in found for field in group]
    for fields, parse in groups:
        missing = [f for f in fields if f not in columns]
        if missing:
            outputs = _distinct(base, ["in_" + missing[0]], pl.String(), parse).collect_schema()
            parts += [_nulls(base, field, outputs) for field in missing]
    table = table.hstack([series for part in pl.collect_all(parts) for series in part.get_columns()])
    # Amounts the common forms do not cover ("126.63 EUR", "€126.63"), parsed per distinct value, when there are.
    slow = pl.col("amount_fast").is_null() & pl.col("money_ok")
    if schema["in_earnings"] == pl.String and table.select(slow.any()).item():
        amounts = _distinct(table.lazy().filter(slow), ["in_earnings"], pl.String(), _amount_slow()).collect()
        table = table.hstack(_joined(table.lazy(), "earnings", amounts).collect().get_columns())
    else:
        table = table.with_columns(
            pl.lit(None, pl.Float64).alias("amount_slow"), pl.lit(None, pl.String).alias("currency_written")
        )
    for stage in _money():
        table = table.with_columns(stage)

    error_columns = sorted(c for c in table.columns if c.startswith("err_"))
    bad = table.select(pl.any_horizontal([pl.col(c).is_not_null() for c in error_columns])).to_series()
    failed = (
        table.filter(bad)
        .select("row_number", *error_columns)
        .unpivot(index="row_number", variable_name="field", value_name="message")
        .drop_nulls("message")
        .with_columns(pl.col("field").str.strip_prefix("err_"))
        .sort("row_number", "field")
    )
    errors = [RowError(*row) for row in failed.iter_rows()]
    rows = table.select(
        "row_number",
        pl.col("source").fill_null(pl.lit(DEFAULT_SOURCE[layout])),
        pl.col("external_code").fill_null(""),
        pl.col("status").fill_null(pl.lit("confirmed")),
        "guest_name",
        pl.col("guest_contact").fill_null(""),
        pl.col("adults").fill_null(1),
        pl.col("children").fill_null(0),
        pl.col("infants").fill_null(0),
        "check_in",
        "check_out",
        "booked_at",
        "earnings",
        "earnings_currency",
        "property_name",
        "property_id",
        "unit",
        pl.col("notes").fill_null(""),
    )
    if errors:
        rows = rows.filter(~bad)
    return Sheet(layout=layout, total_rows=total, rows=rows.cast(ROW_SCHEMA), errors=errors)  # type: ignore[arg-type]


def _staged(frame: pl.LazyFrame, stages: Stages) -> pl.LazyFrame:
    """`frame` with each stage's columns added in turn (a stage reads those before it), then the last stage's
    alone."""
    for stage in stages[:-1]:
        frame = frame.with_columns(stage)
    return frame.select(stages[-1])


def _same_type(fields: Sequence[str], columns: dict[str, str], schema: pl.Schema) -> list[tuple[str, ...]]:
    """The present `fields`, grouped by their columns' type (a table of distinct values has one key type)."""
    by_type: dict[pl.DataType, list[str]] = {}
    for field in fields:
        if field in columns:
            by_type.setdefault(schema[f"in_{field}"], []).append(field)
    return [tuple(group) for group in by_type.values()]


def _distinct(base: pl.LazyFrame, columns: list[str], dtype: pl.DataType, parse: Stages) -> pl.LazyFrame:
    """The distinct non-null values of `columns` as `key`, with the columns `parse` computes from `text` (the
    value as trimmed text)."""
    keys = pl.concat([base.select(pl.col(c).alias("key")) for c in columns]).unique().drop_nulls()
    text = _as_text(pl.col("key"), dtype).str.strip_chars().alias("text")
    return _staged(keys, [[text], *parse[:-1], [pl.col("key"), *parse[-1]]])


def _named(name: str, field: str) -> str:
    """A parse's output name for `field`: "@" stands for the field."""
    return name.replace("@", field)


def _joined(base: pl.LazyFrame, field: str, found: pl.DataFrame) -> pl.LazyFrame:
    """`found`'s columns for each row, by the value of the field's column."""
    found = found.rename({name: _named(name, field) for name in found.columns})
    # Joined on the key alone: a join copies every column of its left side.
    joined = base.select(pl.col(f"in_{field}").alias("key")).join(
        found.lazy(), on="key", how="left", maintain_order="left"
    )
    return joined.drop("key")


def _nulls(base: pl.LazyFrame, field: str, outputs: pl.Schema) -> pl.LazyFrame:
    """The columns a parse would give, all null, for a field the sheet does not have."""
    nulls = [pl.lit(None, dtype).alias(_named(name, field)) for name, dtype in outputs.items() if name != "key"]
    return base.select(pl.col("row_number").alias("key"), *nulls).drop("key")


def _as_text(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A cell as the text it shows: a whole number without ".0", a date cell as fastexcel writes one in a text
    column ("2025-09-10 00:00:00")."""
    if dtype == pl.String:
        return value
    if dtype.is_float():
        whole = value.cast(pl.Int64, strict=False)
        return pl.when(whole == value).then(whole.cast(pl.String)).otherwise(value.cast(pl.String))
    if dtype == pl.Datetime:
        return value.dt.to_string("%Y-%m-%d %H:%M:%S")
    if dtype == pl.Date:
        return value.dt.to_string("%Y-%m-%d")
    return value.cast(pl.String)


def _shown(value: pl.Expr) -> pl.Expr:
    """A cell's text made safe to quote in a message."""
    return value.str.slice(0, 100).str.replace_all(_CONTROL, "\ufffd")


def _text_error(text: pl.Expr, max_length: int, *, multiline: bool = False) -> pl.Expr:
    return (
        pl.when(text.str.len_chars() > max_length)
        .then(pl.lit(f"Ensure this field has no more than {max_length} characters."))
        .when(text.str.contains_any(_CONTROL_CHARS_MULTILINE if multiline else _CONTROL_CHARS))
        .then(pl.lit(CONTROL_CHARACTERS))
        .otherwise(pl.lit(None, pl.String))
    )


def _row_fields(schema: pl.Schema, *, has_unit_type: bool) -> Stages:
    """The fields of many distinct values, row by row: free text trimmed and checked; counts; amounts in their
    common forms ("1020.5", "$1,020.00", a number cell) with whether the text has a readable form at all
    (`money_ok`)."""
    texts = {"external_code": EXTERNAL_CODE_MAX, "guest_contact": CONTACT_MAX, "guest_name": GUEST_NAME_MAX}
    counts = ("adults", "children", "infants")

    def text(name: str) -> pl.Expr:
        return _as_text(pl.col(f"in_{name}"), schema[f"in_{name}"]).str.strip_chars()

    def number(name: str) -> pl.Expr:
        dtype = schema[f"in_{name}"]
        if dtype.is_numeric():
            return pl.col(f"in_{name}").cast(pl.Float64)
        if dtype == pl.String:
            return pl.col(f"in_{name}").str.strip_chars().cast(pl.Float64, strict=False)
        return pl.lit(None, pl.Float64)  # a date or a boolean is no number

    notes = text("notes")
    if has_unit_type:
        notes = pl.concat_str(notes, "Unit type: " + text("unit_type"), separator="\n", ignore_nulls=True)
        notes = notes.replace("", None)
    earnings = pl.col("in_earnings")
    if schema["in_earnings"] == pl.String:
        # Not trimmed: an amount with spaces around it is rare, and the per-value path takes it.
        plain = earnings.str.strip_prefix("$").str.replace_all(",", "", literal=True)
        amount, money_ok = plain.cast(pl.Float64, strict=False), earnings.str.contains(_MONEY)
    else:
        amount, money_ok = number("earnings"), pl.lit(schema["in_earnings"].is_numeric())
    first = [
        *(text(name).alias(name) for name in texts),
        notes.alias("notes"),
        # A float cell 2.0 is 2; the float reading is exact for such small numbers.
        *(number(name).alias(f"{name}_number") for name in counts),
        amount.alias("amount_fast"),
        money_ok.alias("money_ok"),
    ]
    second = [
        *(_text_error(pl.col(name), limit).alias(f"err_{name}") for name, limit in texts.items()),
        _text_error(pl.col("notes"), NOTES_MAX, multiline=True).alias("err_notes"),
    ]
    for name in counts:
        value = pl.col(f"{name}_number")
        whole = ((value == value.floor()) & (value >= 0) & (value <= PEOPLE_MAX)).fill_null(False)
        second += [
            pl.when(whole).then(value).cast(pl.Int64).alias(name),
            pl.when(pl.col(f"in_{name}").is_not_null() & ~whole).then(pl.lit(BAD_COUNT)).alias(f"err_{name}"),
        ]
    guest = pl.col("guest_name")
    third = [pl.when(guest.is_null()).then(pl.lit(BLANK)).otherwise(pl.col("err_guest_name")).alias("err_guest_name")]
    outputs = [*texts, "notes", "amount_fast", "money_ok", *counts]
    outputs += [f"err_{name}" for name in [*texts, "notes", *counts]]
    return [first, second, third, [pl.col(name) for name in outputs]]


def _unit() -> Stages:
    unit = pl.col("text")
    return [[unit.alias("unit"), _text_error(unit, UNIT_NUMBER_MAX).alias("err_unit")]]


def _choice(name: str, words: dict[str, str], valid: Sequence[str]) -> Stages:
    text = pl.col("text")
    word = text.str.to_lowercase().str.replace_all(r"[\s_]+", " ")
    found = word.replace_strict(list(words), list(words.values()), default=None, return_dtype=pl.String)
    message = pl.format(f'"{{}}" is not a recognised {name}. Use one of: {", ".join(valid)}.', _shown(text))
    return [[found.alias(name)], [pl.col(name), pl.when(pl.col(name).is_null()).then(message).alias(f"err_{name}")]]


def _currency() -> Stages:
    code = pl.col("text").str.to_uppercase()
    ok = code.str.contains(r"^[A-Z]{3}$")
    return [
        [
            pl.when(ok).then(code).alias("currency_column"),
            pl.when(~ok).then(pl.lit(BAD_CURRENCY)).alias("currency_problem"),
        ]
    ]


def _property() -> Stages:
    """A whole number is a property id, anything else a property name."""
    text = pl.col("text")
    digits, number = pl.col("digits"), pl.col("property_id")
    return [
        [text.str.extract(r"^([0-9]+)(?:\.0+)?$", 1).alias("digits")],
        [digits.cast(pl.Int64, strict=False).alias("property_id")],
        [
            pl.when(digits.is_null()).then(text).alias("property_name"),
            number,
            pl.when(digits.is_not_null() & ((digits.str.len_bytes() > 18) | (number < 1)))
            .then(pl.lit(BAD_PROPERTY_ID))
            .otherwise(_text_error(text, PROPERTY_NAME_MAX))
            .alias("err_property"),
        ],
    ]


def _moment() -> Stages:
    """A date cell's readings, as "@" (ISO text) and, to compare stays, "@_local" (the day and time as written),
    "@_offset" (minutes east of UTC, or null) and "@_timed" (whether it has a time of its own), with "@_problem".
    Tried in turn: ISO (its first ten characters, then whatever time follows), US month/day/year, and an Excel
    serial day number."""
    text = pl.col("text")
    iso, clock, serial, number = pl.col("iso"), pl.col("clock"), pl.col("serial"), pl.col("number")
    hour, minute = clock.struct["h"].cast(pl.Int64), clock.struct["m"].cast(pl.Int64)
    second = clock.struct["s"].cast(pl.Int64).fill_null(0)
    off_h, off_m = clock.struct["oh"].cast(pl.Int64), clock.struct["om"].cast(pl.Int64).fill_null(0)
    # Whether the text after an ISO date is a time (or nothing, which is midnight).
    time_ok = clock.struct["ok"].is_not_null() & (
        clock.struct["h"].is_null()
        | (hour <= 23) & (minute <= 59) & (second <= 59) & (off_h.is_null() | (off_h <= 23) & (off_m <= 59))
    )
    seconds = (hour * 3600 + minute * 60 + second).fill_null(0)
    iso_local = pl.when(time_ok).then(iso.cast(pl.Datetime("us")) + pl.duration(seconds=seconds))
    offset = (
        pl.when(clock.struct["z"].is_not_null())
        .then(pl.lit(0, pl.Int64))
        .when(clock.struct["sign"] == "-")
        .then(-(off_h * 60 + off_m))
        .otherwise(off_h * 60 + off_m)
    )
    local, minutes = pl.col("local"), pl.col("offset")
    offset_text = pl.concat_str(
        pl.when(minutes < 0).then(pl.lit("-")).otherwise(pl.lit("+")),
        (minutes.abs() // 60).cast(pl.String).str.zfill(2),
        pl.lit(":"),
        (minutes.abs() % 60).cast(pl.String).str.zfill(2),
    )
    # A spreadsheet cannot tell a date cell from midnight: a naive 00:00:00 is a date without a time.
    timed = pl.col("timed")
    year = local.dt.year()
    in_range = (year >= 1900) & (year <= 9998)
    value = (
        pl.when(~in_range)
        .then(pl.lit(None, pl.String))
        .when(timed)
        .then(pl.concat_str(local.dt.to_string("%Y-%m-%dT%H:%M:%S"), offset_text, ignore_nulls=True))
        .otherwise(local.dt.to_string("%Y-%m-%d"))
    )
    problem = (
        pl.when(local.is_null())
        .then(pl.lit(BAD_DATE))
        .when(~in_range)
        .then(pl.lit(DATE_RANGE))
        .otherwise(pl.lit(None, pl.String))
    )
    return [
        [
            text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).alias("iso"),
            text.str.slice(10).str.extract_groups(_ISO_TIME).alias("clock"),
            text.str.to_date("%m/%d/%Y", strict=False).cast(pl.Datetime("us")).alias("us"),
            text.cast(pl.Float64, strict=False).alias("number"),
        ],
        # Bounded before any arithmetic, so that a huge number cannot overflow the duration.
        [pl.when(number.is_between(1, _SERIAL_END, closed="left")).then(number).alias("serial")],
        [
            pl.coalesce(
                iso_local,
                pl.col("us"),
                pl.lit(_EXCEL_EPOCH) + pl.duration(seconds=(serial * 86400).round().cast(pl.Int64)),
            ).alias("local"),
            pl.when(iso_local.is_not_null()).then(offset).alias("offset"),
        ],
        [((local.dt.time() != pl.time(0)) | minutes.is_not_null()).fill_null(False).alias("timed")],
        [
            value.alias("@"),
            local.alias("@_local"),
            minutes.alias("@_offset"),
            timed.alias("@_timed"),
            problem.alias("@_problem"),
        ],
    ]


def _amount_slow() -> Stages:
    money = pl.col("money")
    amount = money.struct["num"].str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)
    symbol = money.struct["sym"].replace_strict(
        list(_CURRENCY_SYMBOLS), list(_CURRENCY_SYMBOLS.values()), default=None, return_dtype=pl.String
    )
    written = pl.coalesce(money.struct["pre"], money.struct["post"]).str.to_uppercase()
    # A code on both sides ("USD 5 EUR") is no amount.
    one_code = money.struct["pre"].is_null() | money.struct["post"].is_null()
    return [
        [pl.col("text").str.extract_groups(_MONEY).alias("money")],
        [pl.when(one_code).then(amount).alias("amount_slow"), pl.coalesce(written, symbol).alias("currency_written")],
    ]


def _money() -> Stages:
    """Earnings as text with two decimals, from whole cents (exact text, exact bound check); the dates' errors,
    and check-out after check-in."""
    text, amount, cents = pl.col("in_earnings"), pl.col("amount"), pl.col("cents")
    error = (
        pl.when(text.is_not_null() & (~pl.col("money_ok") | amount.is_null() | (amount < 0)))
        .then(pl.lit(BAD_AMOUNT))
        .when(text.is_not_null() & (cents.is_null() | (cents > _EARNINGS_MAX_CENTS)))
        .then(pl.lit(AMOUNT_RANGE))
        .otherwise(pl.col("currency_problem"))
    )
    # Rounded as the decimal the cell shows: 12.345 is the float 12.34499..., whose cents round to 1235 only once
    # the float noise is rounded off.
    whole_cents = (pl.col("bounded") * 100).round(6).round(0, mode="half_away_from_zero")
    check_in = pl.when(pl.col("in_check_in").is_null()).then(pl.lit(BLANK)).otherwise(pl.col("check_in_problem"))
    return [
        [pl.coalesce(pl.col("amount_fast"), pl.col("amount_slow")).alias("amount")],
        # Bounded before any arithmetic, so that 1e300 cannot overflow the cast (a `when` computes every row).
        [pl.when(amount.abs() <= _EARNINGS_MAX_CENTS / 100 + 1).then(amount).alias("bounded")],
        [whole_cents.cast(pl.Int64).alias("cents")],
        [
            # Exact: whole cents times a decimal 0.01 print with two decimals.
            (cents.cast(pl.Decimal(20, 0)) * pl.lit(Decimal("0.01"), pl.Decimal(3, 2)))
            .cast(pl.String)
            .alias("earnings"),
            pl.coalesce(pl.col("currency_column"), pl.col("currency_written"), pl.lit("USD")).alias(
                "earnings_currency"
            ),
            error.alias("err_earnings"),
            check_in.alias("err_check_in_date"),
            pl.col("booked_at_problem").alias("err_booked_at"),
        ],
        [_stay_error().alias("err_check_out_date")],
    ]


def _stay_error() -> pl.Expr:
    """Check-out after check-in: by day when either is a date alone, by instant when both carry an offset, else by
    the times as written (a naive time is the property's, whose zone is not known here)."""
    ci, co = pl.col("check_in_local"), pl.col("check_out_local")
    ci_off, co_off = pl.col("check_in_offset"), pl.col("check_out_offset")
    after = (
        pl.when(~pl.col("check_in_timed") | ~pl.col("check_out_timed"))
        .then(co.dt.date() > ci.dt.date())
        .when(ci_off.is_not_null() & co_off.is_not_null())
        .then((co - pl.duration(minutes=co_off)) > (ci - pl.duration(minutes=ci_off)))
        .otherwise(co > ci)
    )
    both = pl.col("check_in").is_not_null() & pl.col("check_out").is_not_null()
    return (
        pl.when(pl.col("in_check_out").is_null())
        .then(pl.lit(BLANK))
        .otherwise(pl.col("check_out_problem"))
        .fill_null(pl.when(both & ~after).then(pl.lit(STAY_ORDER)))
    )
