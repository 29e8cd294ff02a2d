"""The bookings spreadsheet reader: layouts, value forms, row errors and whole-file refusals, on .xlsx and .csv."""

from __future__ import annotations

import io
import random
import zipfile
from datetime import date, datetime
from typing import Any

import fastexcel
import polars as pl
import pytest

from cosmo.imports import spreadsheet
from cosmo.imports.spreadsheet import (
    MAX_BYTES,
    ROW_SCHEMA,
    TEMPLATE_COLUMNS,
    BadSpreadsheet,
    RowError,
    Sheet,
    read_bookings,
    template_xlsx,
)
from tests.sheets import (
    AIRBNB_COLUMNS,
    COSMO_COLUMNS,
    airbnb_csv,
    airbnb_row,
    airbnb_xlsx,
    booking_com_xlsx,
    cosmo_xlsx,
    generated_airbnb_xlsx,
    schedule_xlsx,
    to_csv,
    xlsx,
)

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _read(rows: list[dict[str, Any]], kind: str = "xlsx") -> Sheet:
    data = airbnb_xlsx(rows) if kind == "xlsx" else airbnb_csv(rows)
    return read_bookings(data, f"export.{kind}")


def _one(row: dict[str, Any], kind: str = "xlsx") -> dict[str, Any]:
    """The single valid row read from one Airbnb row (failing with its errors if it is not valid)."""
    sheet = _read([row], kind)
    assert sheet.errors == [], sheet.errors
    return sheet.rows.row(0, named=True)


def _errors(row: dict[str, Any], kind: str = "xlsx") -> dict[str, str]:
    sheet = _read([row], kind)
    assert sheet.rows.height == 0
    return {error.field: error.message for error in sheet.errors}


# Layouts ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_airbnb_export(kind: str) -> None:
    sheet = _read(
        [
            airbnb_row(),
            airbnb_row(
                confirmation_code="HMZZZ",
                status="Canceled by guest",
                guest_name="  Bob Stone ",
                contact="",
                of_adults=1,
                of_children=2,
                of_infants=1,
                start_date="10/01/2025",
                end_date="10/03/2025",
                booked="2025-09-01T08:30:00Z",
                listing="Baixa",
                earnings="$250.5",
            ),
        ],
        kind,
    )
    assert sheet.layout == "airbnb"
    assert sheet.total_rows == 2
    assert sheet.errors == []
    assert sheet.rows.schema == pl.Schema(ROW_SCHEMA)
    assert sheet.rows.to_dicts() == [
        {
            "row_number": 2,
            "source": "airbnb",
            "external_code": "HMABCDEF12",
            "status": "confirmed",
            "guest_name": "Ana Silva",
            "guest_contact": "+351 912 345 678",
            "adults": 2,
            "children": 0,
            "infants": 0,
            "check_in": "2025-09-10",
            "check_out": "2025-09-14",
            "booked_at": "2025-08-01",
            "earnings": "1020.00",
            "earnings_currency": "USD",
            "property_name": "Alfama",
            "property_id": None,
            "unit": None,
            "notes": "",
        },
        {
            "row_number": 3,
            "source": "airbnb",
            "external_code": "HMZZZ",
            "status": "cancelled",
            "guest_name": "Bob Stone",
            "guest_contact": "",
            "adults": 1,
            "children": 2,
            "infants": 1,
            "check_in": "2025-10-01",
            "check_out": "2025-10-03",
            "booked_at": "2025-09-01T08:30:00+00:00",
            "earnings": "250.50",
            "earnings_currency": "USD",
            "property_name": "Baixa",
            "property_id": None,
            "unit": None,
            "notes": "",
        },
    ]


def test_booking_com_export() -> None:
    sheet = read_bookings(
        booking_com_xlsx(
            [
                {
                    "Book number": 4123456789,
                    "Booked by": "Smith, John",
                    "Guest name(s)": "John Smith",
                    "Check-in": "2025-09-10",
                    "Check-out": "2025-09-12",
                    "Booked on": "2025-08-01 10:15:00",
                    "Status": "ok",
                    "Adults": 2,
                    "Children": 1,
                    "Price": "126.63 EUR",
                    "Commission %": 15,
                    "Unit type": "Double Room",
                    "Duration (nights)": 2,
                },
                {
                    "Book number": 4123456790,
                    "Guest name(s)": "Jane Roe",
                    "Check-in": date(2025, 9, 12),
                    "Check-out": date(2025, 9, 14),
                    "Status": "cancelled_by_guest",
                    "Price": "EUR 99.5",
                    "Unit type": "Suite",
                    "Notes": "Quiet room",
                },
                {
                    "Book number": 4123456791,
                    "Guest name(s)": "Kim",
                    "Check-in": "2025-09-20",
                    "Check-out": "2025-09-21",
                    "Status": "no_show",
                },
            ]
        ),
        "booking.xlsx",
    )
    assert sheet.layout == "booking_com"
    assert sheet.errors == []
    rows = sheet.rows.select("external_code", "source", "status", "guest_name", "adults", "children", "check_in")
    assert rows.rows() == [
        ("4123456789", "booking_com", "confirmed", "John Smith", 2, 1, "2025-09-10"),
        ("4123456790", "booking_com", "cancelled", "Jane Roe", 1, 0, "2025-09-12"),
        ("4123456791", "booking_com", "cancelled", "Kim", 1, 0, "2025-09-20"),
    ]
    assert sheet.rows["booked_at"].to_list() == ["2025-08-01T10:15:00", None, None]
    assert sheet.rows["earnings"].to_list() == ["126.63", "99.50", None]
    assert sheet.rows["earnings_currency"].to_list() == ["EUR", "EUR", "USD"]
    # The room type is no unit number: it is kept in the notes.
    assert sheet.rows["unit"].to_list() == [None, None, None]
    assert sheet.rows["notes"].to_list() == ["Unit type: Double Room", "Quiet room\nUnit type: Suite", ""]


def test_schedule_with_airbnb_vrbo_and_properties() -> None:
    sheet = read_bookings(
        schedule_xlsx(
            [
                {
                    "Properties": "Alfama",
                    "Unit": 3,
                    "Airbnb/VRBO": "VRBO",
                    "Guest": "Ann",
                    "Arrival": "9/1/2025",
                    "Departure": "9/5/2025",
                    "Price": 500,
                    "Notes": "line one\n\tline two",
                },
                {
                    "Properties": 7,
                    "Unit": "2B",
                    "Airbnb/VRBO": "airbnb",
                    "Guest": "Bob",
                    "Arrival": datetime(2025, 9, 1, 15, 0),
                    "Departure": datetime(2025, 9, 5, 11, 0),
                    "Price": "£1,234.5",
                },
                {"Properties": "Baixa", "Airbnb/VRBO": "HomeAway", "Guest": "Cy", "Arrival": 45900, "Departure": 45903},
                {"Properties": "Baixa", "Guest": "Di", "Arrival": "2025-10-01", "Departure": "2025-10-02"},
            ]
        ),
        "schedule.xlsx",
    )
    assert sheet.layout == "schedule"
    assert sheet.errors == []
    assert sheet.rows.select("property_name", "property_id", "unit", "source").rows() == [
        ("Alfama", None, "3", "vrbo"),
        (None, 7, "2B", "airbnb"),
        ("Baixa", None, None, "vrbo"),
        ("Baixa", None, None, "direct"),
    ]
    assert sheet.rows.select("check_in", "check_out").rows() == [
        ("2025-09-01", "2025-09-05"),
        ("2025-09-01T15:00:00", "2025-09-05T11:00:00"),
        ("2025-08-31", "2025-09-03"),
        ("2025-10-01", "2025-10-02"),
    ]
    assert sheet.rows.select("earnings", "earnings_currency").rows() == [
        ("500.00", "USD"),
        ("1234.50", "GBP"),
        (None, "USD"),
        (None, "USD"),
    ]
    assert sheet.rows["notes"][0] == "line one\n\tline two"


def test_template_round_trips() -> None:
    data = template_xlsx()
    header = fastexcel.read_excel(data).load_sheet(0).to_polars().columns
    assert header == TEMPLATE_COLUMNS
    sheet = read_bookings(data, "cosmo-template.xlsx")
    assert sheet.layout == "cosmo"
    assert sheet.total_rows == 1
    assert sheet.errors == []
    assert sheet.rows.to_dicts() == [
        {
            "row_number": 2,
            "source": "direct",
            "external_code": "",
            "status": "confirmed",
            "guest_name": "Ana Silva",
            "guest_contact": "ana.silva@example.com",
            "adults": 2,
            "children": 1,
            "infants": 0,
            "check_in": "2025-09-10",
            "check_out": "2025-09-14",
            "booked_at": "2025-08-01",
            "earnings": "1020.00",
            "earnings_currency": "EUR",
            "property_name": "Alfama Loft",
            "property_id": None,
            "unit": "1A",
            "notes": "Late arrival, around 22:00.",
        }
    ]


def test_cosmo_layout_defaults_and_api_names() -> None:
    row = {"property": 12, "guest_name": "Eve", "check_in_date": "2025-09-10", "check_out_date": "2025-09-11"}
    for data, name in ((cosmo_xlsx([row]), "b.xlsx"), (to_csv(COSMO_COLUMNS, [row]), "b.csv")):
        sheet = read_bookings(data, name)
        assert sheet.layout == "cosmo"
        found = sheet.rows.row(0, named=True)
        assert (found["source"], found["status"], found["property_id"], found["property_name"]) == (
            "direct",
            "confirmed",
            12,
            None,
        )
        assert (found["adults"], found["children"], found["infants"]) == (1, 0, 0)
        assert (found["earnings"], found["earnings_currency"], found["booked_at"]) == (None, "USD", None)


def test_headers_match_whatever_their_case_spacing_and_underscores() -> None:
    columns = ["  GUEST   NAME ", "check_in", "Check_Out", "EARNINGS", "Currency", "unit_number", "Property_Name"]
    row = dict(zip(columns, ["Zoe", "2025-09-10", "2025-09-12", "10", "gbp", "4", "Graça"], strict=True))
    sheet = read_bookings(to_csv(columns, [row]), "mine.csv")
    assert sheet.errors == []
    found = sheet.rows.row(0, named=True)
    assert (found["guest_name"], found["check_in"], found["check_out"]) == ("Zoe", "2025-09-10", "2025-09-12")
    assert (found["earnings"], found["earnings_currency"], found["unit"], found["property_name"]) == (
        "10.00",
        "GBP",
        "4",
        "Graça",
    )


def test_first_of_duplicate_columns_is_read_and_other_columns_ignored() -> None:
    data = to_csv(["Guest", "Guest name", "Check in", "Check out", "# of nights", "Whatever"], [])
    data += b"First,Second,2025-09-10,2025-09-11,1,x\r\n"
    sheet = read_bookings(data, "x.csv")
    assert sheet.rows["guest_name"].to_list() == ["First"]


# Dates --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("09/10/2025", "2025-09-10"),
        ("9/1/2025", "2025-09-01"),
        ("2025-09-10", "2025-09-10"),
        ("2025-09-10T15:00", "2025-09-10T15:00:00"),
        ("2025-09-10 15:30:45.250", "2025-09-10T15:30:45"),
        ("2025-09-10T15:00:00Z", "2025-09-10T15:00:00+00:00"),
        ("2025-09-10T15:00:00+0100", "2025-09-10T15:00:00+01:00"),
        ("2025-09-10T15:00-05:30", "2025-09-10T15:00:00-05:30"),
        ("2025-09-10T00:00:00", "2025-09-10"),  # a spreadsheet's midnight is a date without a time
        ("2025-09-10T00:00:00+02:00", "2025-09-10T00:00:00+02:00"),
        (date(2025, 9, 10), "2025-09-10"),
        (datetime(2025, 9, 10, 16, 45), "2025-09-10T16:45:00"),
        (45910, "2025-09-10"),
        (45910.25, "2025-09-10T06:00:00"),
        ("45910", "2025-09-10"),
    ],
)
def test_check_in_forms(cell: Any, expected: str) -> None:
    assert _one(airbnb_row(start_date=cell, end_date="12/31/2025"))["check_in"] == expected
    if not isinstance(cell, date | int | float):
        assert _one(airbnb_row(start_date=cell, end_date="12/31/2025"), "csv")["check_in"] == expected


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("13/01/2025", spreadsheet.BAD_DATE),
        ("2025-02-30", spreadsheet.BAD_DATE),
        ("next Tuesday", spreadsheet.BAD_DATE),
        ("2025-09-10T25:00", spreadsheet.BAD_DATE),
        ("2025-09-10T10:00+24:00", spreadsheet.BAD_DATE),
        ("2025-09-10x", spreadsheet.BAD_DATE),
        (True, spreadsheet.BAD_DATE),
        ("0001-01-01", spreadsheet.DATE_RANGE),
        ("1/1/1899", spreadsheet.DATE_RANGE),
        ("9999-01-01", spreadsheet.DATE_RANGE),
        (10**9, spreadsheet.BAD_DATE),
        ("", spreadsheet.BLANK),
    ],
)
def test_bad_check_in(cell: Any, message: str) -> None:
    errors = _errors(airbnb_row(start_date=cell, end_date="12/31/2025"))
    assert errors == {"check_in_date": message}


def test_bad_booked_at_and_check_out() -> None:
    assert _errors(airbnb_row(booked="yesterday")) == {"booked_at": spreadsheet.BAD_DATE}
    assert _errors(airbnb_row(end_date="")) == {"check_out_date": spreadsheet.BLANK}
    assert _errors(airbnb_row(end_date="31/12/2025")) == {"check_out_date": spreadsheet.BAD_DATE}


@pytest.mark.parametrize(
    ("check_in", "check_out", "fine"),
    [
        ("09/10/2025", "09/11/2025", True),
        ("09/10/2025", "09/10/2025", False),
        ("09/10/2025", "09/09/2025", False),
        # A date alone on either side: compared by day.
        ("2025-09-10", "2025-09-10T23:00:00", False),
        ("2025-09-10T10:00:00", "2025-09-11", True),
        # Times as written when either has no offset (both are the property's local time).
        ("2025-09-10T10:00:00", "2025-09-10T15:00:00", True),
        ("2025-09-10T15:00:00", "2025-09-10T15:00:00", False),
        # Instants when both carry one: 13:00Z is before 14:00Z, though 15:00 is after 14:00.
        ("2025-09-10T15:00:00+02:00", "2025-09-10T14:00:00Z", True),
        ("2025-09-10T15:00:00Z", "2025-09-10T16:00:00+02:00", False),
    ],
)
def test_check_out_must_follow_check_in(check_in: str, check_out: str, fine: bool) -> None:
    sheet = _read([airbnb_row(start_date=check_in, end_date=check_out)])
    if fine:
        assert sheet.errors == []
    else:
        assert sheet.errors == [RowError(2, "check_out_date", "Check-out must be after check-in.")]


# Money, statuses, sources, counts, text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "currency_column", "expected"),
    [
        ("$1,020.00", None, ("1020.00", "USD")),
        ("$1,234,567.8", None, ("1234567.80", "USD")),
        ("1020.5", None, ("1020.50", "USD")),
        (".5", None, ("0.50", "USD")),
        ("0", None, ("0.00", "USD")),
        ("126.63 EUR", None, ("126.63", "EUR")),
        ("EUR 126.63", None, ("126.63", "EUR")),
        ("eur126.63", None, ("126.63", "EUR")),
        ("€126.63", None, ("126.63", "EUR")),
        ("£5", None, ("5.00", "GBP")),
        (" $ 7 ", None, ("7.00", "USD")),
        (1020.456, None, ("1020.46", "USD")),
        (12.345, None, ("12.35", "USD")),
        (999999999999.99, None, ("999999999999.99", "USD")),
        ("€5", "usd", ("5.00", "USD")),  # an explicit currency column wins over a symbol
        ("5", "GBP", ("5.00", "GBP")),
    ],
)
def test_earnings_forms(cell: Any, currency_column: str | None, expected: tuple[str, str]) -> None:
    row = airbnb_row(earnings=cell, Currency=currency_column)
    found = _one(row)
    assert (found["earnings"], found["earnings_currency"]) == expected
    if isinstance(cell, str):
        found = _one(row, "csv")
        assert (found["earnings"], found["earnings_currency"]) == expected


@pytest.mark.parametrize(
    ("cell", "currency_column", "message"),
    [
        ("-5", None, spreadsheet.BAD_AMOUNT),
        ("$-5.00", None, spreadsheet.BAD_AMOUNT),
        (-5, None, spreadsheet.BAD_AMOUNT),
        ("126,63", None, spreadsheet.BAD_AMOUNT),  # a decimal comma is refused, not read as 12663
        ("1,0,2", None, spreadsheet.BAD_AMOUNT),
        ("USD 5 EUR", None, spreadsheet.BAD_AMOUNT),
        ("lots", None, spreadsheet.BAD_AMOUNT),
        (True, None, spreadsheet.BAD_AMOUNT),
        ("1000000000000", None, spreadsheet.AMOUNT_RANGE),
        ("9" * 400, None, spreadsheet.AMOUNT_RANGE),
        (1e300, None, spreadsheet.AMOUNT_RANGE),
        ("5", "EURO", spreadsheet.BAD_CURRENCY),
    ],
)
def test_bad_earnings(cell: Any, currency_column: str | None, message: str) -> None:
    assert _errors(airbnb_row(earnings=cell, Currency=currency_column)) == {"earnings": message}


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Confirmed", "confirmed"),
        ("  canceled BY guest ", "cancelled"),
        ("Canceled by host", "cancelled"),
        ("Canceled", "cancelled"),
        ("Cancelled", "cancelled"),
        ("Past guest", "completed"),
        ("Currently hosting", "currently_hosting"),
        ("Pending", "booked"),
        ("Request", "booked"),
        ("Awaiting guest verification", "booked"),
        ("OK", "confirmed"),
        ("cancelled_by_hotel", "cancelled"),
        ("no_show", "cancelled"),
        ("owner_staying", "owner_staying"),
        ("Owner staying", "owner_staying"),
        ("booked", "booked"),
        ("completed", "completed"),
        (None, "confirmed"),
    ],
)
def test_status_map(cell: str | None, expected: str) -> None:
    assert _one(airbnb_row(status=cell))["status"] == expected


def test_unknown_status_and_source_are_row_errors() -> None:
    errors = _errors(airbnb_row(status="Maybe", source="Expedia"))
    assert errors == {
        "source": '"Expedia" is not a recognised source. Use one of: airbnb, vrbo, booking_com, direct, owner, other.',
        "status": '"Maybe" is not a recognised status. Use one of: booked, confirmed, currently_hosting, '
        "owner_staying, cancelled, completed.",
    }


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Airbnb", "airbnb"),
        ("VRBO", "vrbo"),
        ("homeaway", "vrbo"),
        ("Booking.com", "booking_com"),
        ("Booking", "booking_com"),
        ("booking_com", "booking_com"),
        ("Direct", "direct"),
        ("OWNER", "owner"),
        ("other", "other"),
        (None, "airbnb"),
    ],
)
def test_source_map(cell: str | None, expected: str) -> None:
    assert _one(airbnb_row(source=cell))["source"] == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [(2, 2), (2.0, 2), ("3", 3), (" 4 ", 4), ("5.0", 5), (0, 0), (99, 99), (None, 1)],
)
def test_counts(cell: Any, expected: int) -> None:
    assert _one(airbnb_row(of_adults=cell))["adults"] == expected


@pytest.mark.parametrize("cell", [2.5, "2.5", -1, "-1", 100, "100", 2**63, str(2**63), "two", True])
def test_bad_counts(cell: Any) -> None:
    assert _errors(airbnb_row(of_children=cell)) == {"children": "Enter a whole number from 0 to 99."}


def test_text_limits_and_control_characters() -> None:
    too_long = "Ensure this field has no more than {} characters."
    control = "Remove the control characters (such as NUL) from this field."
    sheet = _read(
        [
            airbnb_row(guest_name="A" * 200, confirmation_code="C" * 100, contact="c" * 200, listing="P" * 200),
            airbnb_row(guest_name="A" * 201),
            airbnb_row(confirmation_code="C" * 101),
            airbnb_row(contact="c" * 201),
            airbnb_row(Notes="n" * 5001),
            airbnb_row(listing="P" * 201),
            airbnb_row(Unit="U" * 51),
            airbnb_row(guest_name="Ana\x00Silva"),
            airbnb_row(guest_name="Ana\nSilva"),
            airbnb_row(Notes="fine\ttab\nand newline", Unit="7\x07"),
            airbnb_row(guest_name=""),
        ]
    )
    assert sheet.rows["row_number"].to_list() == [2]
    assert [(e.row_number, e.field, e.message) for e in sheet.errors] == [
        (3, "guest_name", too_long.format(200)),
        (4, "external_code", too_long.format(100)),
        (5, "guest_contact", too_long.format(200)),
        (6, "notes", too_long.format(5000)),
        (7, "property", too_long.format(200)),
        (8, "unit", too_long.format(50)),
        (9, "guest_name", control),
        (10, "guest_name", control),
        (11, "unit", control),
        (12, "guest_name", "This field may not be blank."),
    ]


def test_property_ids_and_names() -> None:
    sheet = _read(
        [
            airbnb_row(listing=12),
            airbnb_row(listing="12"),
            airbnb_row(listing=" Alfama  "),
            airbnb_row(listing="12.5"),
            airbnb_row(listing="0"),
            airbnb_row(listing="9" * 19),
        ]
    )
    assert sheet.rows.select("property_id", "property_name").rows() == [
        (12, None),
        (12, None),
        (None, "Alfama"),
        (None, "12.5"),
    ]
    assert [(e.row_number, e.field) for e in sheet.errors] == [(6, "property"), (7, "property")]


# Row numbers and errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_row_numbers_are_the_spreadsheets_and_blank_rows_are_skipped(kind: str) -> None:
    blank_looking = dict.fromkeys(AIRBNB_COLUMNS, "  ")
    sheet = _read(
        [
            airbnb_row(),
            {},
            blank_looking,
            airbnb_row(guest_name="", of_adults="x", start_date="soon"),
            airbnb_row(confirmation_code="HM2"),
        ],
        kind,
    )
    assert sheet.total_rows == 3
    assert sheet.rows["row_number"].to_list() == [2, 6]
    assert sheet.rows["external_code"].to_list() == ["HMABCDEF12", "HM2"]
    # Errors come sorted by row, then field.
    assert [(e.row_number, e.field) for e in sheet.errors] == [
        (5, "adults"),
        (5, "check_in_date"),
        (5, "guest_name"),
    ]


def test_csv_blank_lines_and_quoted_newlines_keep_row_numbers() -> None:
    header = ",".join(AIRBNB_COLUMNS[:9])
    data = (
        f"{header}\r\n"
        "A1,Confirmed,Ann,,2,0,0,09/10/2025,09/12/2025\r\n"
        "\r\n"
        ",,,,,,,,\r\n"
        'A2,Confirmed,"Bob\nStone",,2,0,0,09/10/2025,09/12/2025\r\n'
        "A3,Confirmed,Cy,,2,0,0,09/10/2025,09/12/2025\r\n"
    ).encode()
    sheet = read_bookings(data, "x.csv")
    assert sheet.total_rows == 3
    assert sheet.rows["row_number"].to_list() == [2, 6]
    assert sheet.errors == [RowError(5, "guest_name", spreadsheet.CONTROL_CHARACTERS)]


def test_header_only_file_has_no_rows() -> None:
    for data, name in ((airbnb_xlsx([]), "x.xlsx"), (airbnb_csv([]), "x.csv")):
        sheet = read_bookings(data, name)
        assert (sheet.layout, sheet.total_rows, sheet.errors) == ("airbnb", 0, [])
        assert sheet.rows.height == 0
        assert sheet.rows.schema == pl.Schema(ROW_SCHEMA)


# CSV and content sniffing -------------------------------------------------------------------------------------


def test_csv_encodings_and_separators() -> None:
    row = airbnb_row(guest_name="José Müller", earnings="€10")
    for data in (
        airbnb_csv([row], bom=True),
        airbnb_csv([row], encoding="cp1252"),
        airbnb_csv([row], delimiter=";"),
        airbnb_csv([row], delimiter="\t"),
    ):
        found = read_bookings(data, "export.csv").rows.row(0, named=True)
        assert (found["guest_name"], found["earnings"], found["earnings_currency"]) == ("José Müller", "10.00", "EUR")


def test_content_decides_the_format_not_the_name() -> None:
    assert read_bookings(airbnb_csv([airbnb_row()]), "export.xlsx").rows.height == 1
    assert read_bookings(airbnb_xlsx([airbnb_row()]), "export.CSV").rows.height == 1
    assert read_bookings(airbnb_xlsx([airbnb_row()]), "export.xlsm").rows.height == 1


def test_sheet_by_name() -> None:
    data = xlsx(AIRBNB_COLUMNS, [airbnb_row()], sheet_name="Bookings", other_sheets=["Notes"])
    assert read_bookings(data, "x.xlsx", "Bookings").rows.height == 1
    assert read_bookings(data, "x.xlsx").rows.height == 1  # the first sheet
    assert _refusal(data, sheet_name="Notes").startswith("The sheet is missing required columns")
    assert (
        _refusal(data, sheet_name="2025") == 'The workbook has no sheet named "2025". Its sheets: "Bookings", "Notes".'
    )


# Whole-file refusals ------------------------------------------------------------------------------------------


def _refusal(data: bytes, name: str = "x.xlsx", sheet_name: str | None = None) -> str:
    with pytest.raises(BadSpreadsheet) as caught:
        read_bookings(data, name, sheet_name)
    return str(caught.value)


def test_refusals() -> None:
    workbook = airbnb_xlsx([airbnb_row()])
    assert _refusal(b"") == "The file is empty."
    assert _refusal(b"a" * (MAX_BYTES + 1), "x.csv") == "The file is larger than 10 MB."
    assert "not a spreadsheet" in _refusal(PNG, "photo.xlsx")
    assert "not a spreadsheet" in _refusal(PNG, "photo.csv")
    assert "not a spreadsheet" in _refusal(bytes(range(256)) * 4, "x.csv")
    assert "not a spreadsheet" in _refusal(airbnb_csv([airbnb_row()]), "export.txt")
    assert "not a spreadsheet" in _refusal(workbook, "export")
    assert "encrypted" in _refusal(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(600), "old.xls")
    assert "old .xls" in _refusal(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(600), "secret.xlsx")
    assert "not a spreadsheet" in _refusal(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(600), "letter.doc")
    assert "damaged" in _refusal(b"PK\x03\x04" + bytes(200))
    assert "damaged" in _refusal(workbook[: len(workbook) // 2])
    assert "not a spreadsheet" in _refusal(b"\r\n\r\nGuest name\r\n", "x.csv")  # no header line


def test_a_zip_that_is_no_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    assert "damaged" in _refusal(buffer.getvalue())


def test_missing_required_columns_are_named() -> None:
    message = _refusal(to_csv(["Guest name", "Start", "Nights"], [{"Guest name": "Ann"}]), "x.csv")
    assert message.startswith("The sheet is missing required columns: check-in date (")
    assert "check-out date (" in message
    assert "guest name" not in message.split("Columns found")[0]
    assert message.endswith('Columns found: "Guest name", "Start", "Nights".')


def test_too_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spreadsheet, "MAX_ROWS", 3)
    rows = [airbnb_row(confirmation_code=f"C{i}") for i in range(4)]
    assert _refusal(airbnb_xlsx(rows)) == "The file has 4 rows of bookings; import at most 3 at a time."
    # Blank rows do not count.
    assert read_bookings(airbnb_xlsx([rows[0], {}, {}, rows[1], rows[2]]), "x.xlsx").total_rows == 3


def test_hostile_input_gives_a_sheet_or_a_refusal() -> None:
    generator = random.Random(20250910)
    workbook = airbnb_xlsx([airbnb_row(), airbnb_row(confirmation_code="HM2")])
    samples = [generator.randbytes(generator.randint(1, 3000)) for _ in range(40)]
    samples += [b"PK\x03\x04" + generator.randbytes(500) for _ in range(10)]
    samples += [workbook[:cut] for cut in range(100, len(workbook), max(1, len(workbook) // 25))]
    samples += [bytes(b ^ 0xFF if i % 97 == 13 else b for i, b in enumerate(workbook))]
    hostile_values: list[Any] = ["\x00", "a\x00b", "x" * 32_000, 2**63, -(2**63), 1e308, -1e308, True, "0001-01-01"]
    hostile_values += ["9999-12-31", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "‮", "NaN", "inf"]
    for value in hostile_values:
        # In every column at once, beside a good row: each column then holds two kinds of cell.
        samples.append(airbnb_xlsx([airbnb_row(**dict.fromkeys(AIRBNB_COLUMNS, value)), airbnb_row()]))
        samples.append(airbnb_csv([airbnb_row(**dict.fromkeys(AIRBNB_COLUMNS, value)), airbnb_row()]))
    huge = airbnb_csv([airbnb_row(guest_name="g" * 1_000_000, Notes="\x00" * 10)])
    samples += [huge, airbnb_csv([airbnb_row(**dict.fromkeys(AIRBNB_COLUMNS, "\x00"))])]
    outcomes = {"sheet": 0, "refused": 0}
    for data in samples:
        try:
            assert isinstance(read_bookings(data, "x.xlsx"), Sheet)
            outcomes["sheet"] += 1
        except BadSpreadsheet:
            outcomes["refused"] += 1
    assert outcomes["sheet"] > 0 and outcomes["refused"] > 0
    found = read_bookings(huge, "x.csv")
    assert [(e.row_number, e.field) for e in found.errors] == [(2, "guest_name"), (2, "notes")]


# The test workbooks themselves --------------------------------------------------------------------------------


def test_generated_workbook_is_valid_and_never_overlaps() -> None:
    sheet = read_bookings(generated_airbnb_xlsx(600, ["Alfama", "Baixa"], 3), "generated.xlsx")
    assert (sheet.layout, sheet.total_rows, sheet.errors) == ("airbnb", 600, [])
    stays = sheet.rows.sort("property_name", "unit", "check_in")
    overlapping = stays.filter(
        (pl.col("check_in") < pl.col("check_out").shift(1).over("property_name", "unit"))
        & (pl.col("status") != "cancelled")
    )
    assert overlapping.height == 0
    assert stays.group_by("property_name", "unit").len().height == 6
    assert sheet.rows["earnings"].str.contains(r"^[0-9]+\.[0-9]{2}$").all()
