"""Fixtures of the ``medcl core`` tests."""

import sys

import pytest


@pytest.fixture
def core_cli(capsys):
    """Run ``medcl core ARGS...`` in this process as the console script does (a MedclError
    exits 2 with one line on stderr); return ``(exit code, stdout, stderr)``.

    The ``core`` group is called directly rather than through the front door's entry points,
    so these tests do not depend on how fresh the installed package metadata is.
    """
    import typer

    from medcl.core.cli import app
    from medcl.io.errors import MedclError

    def run(args):
        old = sys.argv
        sys.argv = ["medcl", "core", *map(str, args)]
        try:
            app(args=[str(a) for a in args], prog_name="medcl core")
            code = 0
        except SystemExit as stop:
            code = stop.code or 0
        except MedclError as err:
            typer.secho(f"error: {err}", fg="red", err=True)
            code = err.exit_code
        finally:
            sys.argv = old
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: tiny networks run fastest so, and two busy OpenMP
    threads thrash a loaded runner. Modules use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
