"""Legal deadlines by §§187–193 BGB: month ends, leap years, weekends, Hessian holidays, Berlin days in UTC."""

from datetime import UTC, date, datetime

import pytest

from engine.deadlines import (
    DeadlineError,
    add_months,
    deadline,
    deemed_approval,
    delivery_fiction,
    end_of_day,
    extend_deemed_approval,
    is_working_day,
    local_day,
    next_working_day,
    period_end,
    postbox_delivery,
    reminder,
)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("start, months, expected", [
    (date(2025, 1, 31), 1, date(2025, 2, 28)),   # §188(3): February has no 31st
    (date(2024, 1, 31), 1, date(2024, 2, 29)),   # leap year
    (date(2024, 2, 29), 12, date(2025, 2, 28)),  # from a leap day, a year on
    (date(2025, 3, 31), 1, date(2025, 4, 30)),
    (date(2025, 11, 30), 3, date(2026, 2, 28)),  # across the year
    (date(2025, 5, 15), 1, date(2025, 6, 15)),
])
def test_add_months_keeps_the_day_or_takes_the_months_last(start, months, expected):
    assert add_months(start, months) == expected


def test_month_from_31_january_ends_at_end_of_february_unless_weekend():
    # 2025-02-28 is a Friday: the period ends then.
    assert period_end(date(2025, 1, 31), months=1) == date(2025, 2, 28)
    # 2026-02-28 is a Saturday: §193 moves the end to Monday 2 March.
    assert period_end(date(2026, 1, 31), months=1) == date(2026, 3, 2)
    assert period_end(date(2026, 1, 31), months=1, roll=False) == date(2026, 2, 28)
    # Leap year 2028: 29 February is a Tuesday.
    assert period_end(date(2028, 1, 31), months=1) == date(2028, 2, 29)


def test_days_do_not_count_the_event_day_but_periods_from_a_day_start_do():
    # Event on Monday 3 March 2025, ten days: counting starts on the 4th, ends Thursday 13 March.
    assert period_end(date(2025, 3, 3), days=10) == date(2025, 3, 13)
    assert period_end(date(2025, 3, 3), days=10, from_event=False) == date(2025, 3, 12)
    # Weeks end on the same weekday as the event (Wednesday → Wednesday).
    assert period_end(date(2025, 3, 5), weeks=2) == date(2025, 3, 19)
    assert period_end(date(2025, 3, 5), weeks=2, from_event=False) == date(2025, 3, 18)
    # A period from the beginning of a day, in months: the day before the corresponding day.
    assert period_end(date(2025, 3, 1), months=1, from_event=False) == date(2025, 3, 31)


def test_hessian_holidays_and_weekends_move_the_end():
    assert not is_working_day(date(2025, 6, 19))  # Fronleichnam: a holiday in Hesse
    assert is_working_day(date(2025, 6, 20))
    assert is_working_day(date(2025, 6, 19), subdiv="BE")  # not a holiday in Berlin: holidays are per state
    # Ends on Fronleichnam (Thursday) → Friday.
    assert period_end(date(2025, 5, 19), days=31) == date(2025, 6, 20)
    # Ends on Good Friday 2025 (18 April) → Easter Monday is a holiday too → Tuesday 22 April.
    assert period_end(date(2025, 3, 18), months=1) == date(2025, 4, 22)
    # Christmas: 25 Dec 2025 (Thu) → 26 (Fri, holiday) → weekend → Monday 29 December.
    assert period_end(date(2025, 11, 25), months=1) == date(2025, 12, 29)
    # New Year's Day 2026 is a Thursday.
    assert next_working_day(date(2026, 1, 1)) == date(2026, 1, 2)


def test_reformation_day_is_not_a_holiday_in_hesse():
    assert is_working_day(date(2025, 10, 31))
    assert not is_working_day(date(2025, 10, 31), subdiv="NI")


def test_days_are_berlin_days_and_ends_are_midnight_berlin_in_utc():
    # 23:30 UTC on 31 January is already 1 February in Berlin.
    assert local_day(utc(2025, 1, 31, 23, 30)) == date(2025, 2, 1)
    assert end_of_day(date(2025, 2, 28)) == utc(2025, 2, 28, 23, 0)  # winter time: UTC+1
    assert end_of_day(date(2025, 7, 15)) == utc(2025, 7, 15, 22, 0)  # summer time: UTC+2
    assert deadline(utc(2025, 1, 31, 10, 0), months=1) == utc(2025, 2, 28, 23, 0)
    with pytest.raises(DeadlineError):
        local_day(datetime(2025, 1, 1, 12, 0))
    with pytest.raises(DeadlineError):
        period_end(date(2025, 1, 1))


def test_deemed_approval_three_months_after_documents_complete_extended_once():
    record = deemed_approval(utc(2025, 11, 30, 14, 0))  # complete on Sunday 30 Nov 2025
    assert record["ends_on"] == "2026-03-02"  # 28 Feb 2026 is a Saturday → Monday
    assert record["ends_at"] == "2026-03-02T23:00:00+00:00"
    extended = extend_deemed_approval(record, 1, "Gutachten des Bauamts steht aus", at=utc(2026, 2, 1, 9, 0))
    assert extended["ends_on"] == "2026-04-02"
    assert extended["extended"]["reason"] == "Gutachten des Bauamts steht aus"
    assert extended["extended"]["original_ends_on"] == "2026-03-02"
    with pytest.raises(DeadlineError, match="only once"):
        extend_deemed_approval(extended, 1, "noch einmal", at=utc(2026, 3, 1))
    with pytest.raises(DeadlineError, match="reason"):
        extend_deemed_approval(record, 1, "  ", at=utc(2026, 2, 1))
    with pytest.raises(DeadlineError, match="already ended"):
        extend_deemed_approval(record, 1, "zu spät", at=utc(2026, 3, 3))


def test_delivery_fiction_fourth_day_after_dispatch():
    # Sent Monday 3 March 2025 → Friday 7 March.
    assert delivery_fiction(utc(2025, 3, 3, 10, 0)) == date(2025, 3, 7)
    # Sent Tuesday 4 March → Saturday 8 → Monday 10 March; without rolling: the Saturday.
    assert delivery_fiction(utc(2025, 3, 4, 10, 0)) == date(2025, 3, 10)
    assert delivery_fiction(utc(2025, 3, 4, 10, 0), roll=False) == date(2025, 3, 8)
    # Sent Monday 14 April 2025 → Good Friday 18 → Easter Monday 21 → Tuesday 22 April.
    assert delivery_fiction(utc(2025, 4, 14, 10, 0)) == date(2025, 4, 22)
    # The old three-day rule, for decisions sent before 2025.
    assert delivery_fiction(utc(2024, 11, 4, 10, 0), days=3) == date(2024, 11, 7)


def test_postbox_delivery_day_after_retrieval_within_ten_days():
    sent = utc(2025, 3, 3, 10, 0)
    assert postbox_delivery(sent, utc(2025, 3, 5, 18, 0)) == date(2025, 3, 6)
    assert postbox_delivery(sent, utc(2025, 3, 13, 12, 0)) == date(2025, 3, 14)
    assert postbox_delivery(sent, utc(2025, 3, 14, 12, 0)) is None  # 11 days: not delivered
    assert postbox_delivery(sent, None) is None


def test_reminder_working_days_before():
    # Three working days before Monday 10 March 2025: Wed 5 March.
    assert reminder(date(2025, 3, 10), 3) == date(2025, 3, 5)
    # Before Tuesday 22 April 2025 (after Easter): Thu 17, Wed 16, Tue 15 April.
    assert reminder(date(2025, 4, 22), 3) == date(2025, 4, 15)
