"""Date-time parsing for DATE_AFTER / DATE_BEFORE."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from switchman.engine.timestamps import parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-01-29T13:00:00.000Z", datetime(2022, 1, 29, 13, tzinfo=UTC)),
        ("2022-01-29T13:00:00Z", datetime(2022, 1, 29, 13, tzinfo=UTC)),
        ("2022-01-29t13:00:00z", datetime(2022, 1, 29, 13, tzinfo=UTC)),
        ("2022-01-29 13:00:00Z", datetime(2022, 1, 29, 13, tzinfo=UTC)),
        ("2022-01-29T13:00:00", datetime(2022, 1, 29, 13, tzinfo=UTC)),
        ("2022-01-29T13:00", datetime(2022, 1, 29, 13, tzinfo=UTC)),
        ("2022-01-29", datetime(2022, 1, 29, tzinfo=UTC)),
        ("2022-01-29T13:00:00.5Z", datetime(2022, 1, 29, 13, 0, 0, 500000, tzinfo=UTC)),
        ("2022-01-29T13:00:00.123456789Z", datetime(2022, 1, 29, 13, 0, 0, 123456, tzinfo=UTC)),
        ("2023-12-27T13:37:00+01:00", datetime(2023, 12, 27, 13, 37, tzinfo=timezone(timedelta(hours=1)))),
        (
            "2023-12-27T13:37:00-0530",
            datetime(2023, 12, 27, 13, 37, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
    ],
)
def test_parse_accepted(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2022",
        "2022-01",
        "20220129T130000Z",
        "2022-W04-6",
        "2022-029",
        "2022-01-29T13",
        "2022-01-29T13:00:00,5Z",
        "2022-02-30T00:00:00Z",
        "2022-01-29T24:00:00Z",
        "2016-12-31T23:59:60Z",
        "2022-01-29T13:00:00+24:00",
        "2022-01-29T13:00:00+01:60",
        " 2022-01-29T13:00:00Z",
        "\uff12\uff10\uff12\uff12-01-29",  # fullwidth digits
        "yesterday",
    ],
)
def test_parse_refused(text: str) -> None:
    assert parse_timestamp(text) is None


def test_parse_is_total_for_non_strings() -> None:
    assert parse_timestamp(None) is None
    assert parse_timestamp(1643461200) is None
