"""The `astro-dag-deploy` command: the client's commands always, the checkout's through the entry-point group."""

from importlib.metadata import entry_points

import pytest

from astro_dag_deploy import cli
from local_mode import commands, serve


@pytest.fixture
def client_alone(monkeypatch):
    """The command as `pip install ./client` leaves it: no checkout registers anything."""
    monkeypatch.setattr(cli, "entry_points", lambda group: [])


@pytest.mark.parametrize("argv", [["local"], ["serve", "--port", "0"], ["bench", "--sizes", "10", "--help"]])
def test_without_the_checkout_its_commands_say_in_one_line_how_to_get_it(client_alone, capsys, argv):
    assert cli.main(argv) == 2

    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"astro-dag-deploy {argv[0]}: needs the project checkout") and "git clone " in err
    assert err.rstrip().endswith("&& make demo")


def test_without_the_checkout_help_lists_its_commands_too(client_alone):
    listed = cli.build_parser().format_help()

    for name in ("submit", "push", "status", "local", "serve", "bench"):
        assert f"    {name} " in listed
    assert listed.count("[needs the project checkout]") == 3


def test_the_checkout_registers_local_serve_and_bench():
    registered = {entry_point.name: entry_point.load() for entry_point in entry_points(group=cli.COMMANDS_GROUP)}

    assert registered == {"local": commands.register_local_command, "serve": serve.register_serve_command,
                          "bench": commands.register_bench_command}
    assert "[needs the project checkout]" not in cli.build_parser().format_help()


def test_bench_passes_its_arguments_to_the_benchmarks_own_command_line(monkeypatch):
    received = []
    monkeypatch.setattr("local_mode.bench.__main__.main", lambda argv: received.append(argv) or 0)

    assert cli.main(["bench", "--sizes", "10", "--runs", "1", "--no-write"]) == 0

    assert received == [["--sizes", "10", "--runs", "1", "--no-write"]]


def test_the_other_commands_still_refuse_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as refused:
        cli.main(["status", "repo-a-1", "--api-url", "http://127.0.0.1:1", "--bogus"])

    assert refused.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
