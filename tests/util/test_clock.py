"""Tests of medcl.util.clock."""

from medcl.util.clock import clock


def test_clock_formats_hours_minutes_seconds():
    assert clock(0) == "0:00:00" and clock(59.6) == "0:01:00" and clock(3725.4) == "1:02:05"
