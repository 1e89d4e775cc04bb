"""Fixtures shared by the app tests."""

import sys

import pytest


@pytest.fixture
def medcl_cli(capsys):
    """Run ``medcl ARGS...`` in this process as the console script does; return
    ``(exit code, stdout, stderr)`` (a MedclError exits 2 with one line on stderr)."""
    from medcl.cli import main

    def run(args):
        old = sys.argv
        sys.argv = ["medcl", *map(str, args)]
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code or 0
        finally:
            sys.argv = old
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
