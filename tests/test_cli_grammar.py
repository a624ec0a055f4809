"""The `tierlake` command line as users type it: nested commands with a default, options taking
several values, one --quiet before or after the command, usage mistakes as one message and exit 2,
and --help for every command. Nothing here starts Spark or Prefect."""

import subprocess
import sys

import pytest

from flows.cli import build_cli, main, parse


def _leaves(group, path=()):
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):
            yield from _leaves(cmd, (*path, name))
        elif not cmd.hidden:
            yield (*path, name)


def test_nested_commands_and_their_defaults():
    assert parse(["containment", "lake", "out"])[0] == "containment find"
    assert parse(["containment", "find", "lake", "out"])[0] == "containment find"
    command, args = parse(["containment", "plan", "out", "--apply", "--trash", "t"])
    assert command == "containment plan" and args.apply and args.trash == "t" and args.output == "out"
    assert parse(["containment", "restore", "t/a.parquet"])[1].entry == "t/a.parquet"
    command, args = parse(["select", "run", "out", "--budget", "2e6"])
    assert command == "select mix" and args.budget == 2e6 and args.run_dir == "run"
    command, args = parse(["select", "qqt", "--params", "p.json", "--budgets", "1e6,2e6"])
    assert command == "select qqt" and args.budgets == "1e6,2e6"
    # an option of the default command before its arguments
    assert parse(["containment", "--min-ratio", "0.5", "lake", "out"])[1].min_ratio == 0.5


def test_options_taking_several_values():
    _, args = parse(["score", "in", "out", "--targets", "a.jsonl", "b.jsonl", "--decontaminate", "t.jsonl", "--seed", "3"])
    assert args.targets == ("a.jsonl", "b.jsonl") and args.decontaminate == ("t.jsonl",) and args.seed == 3
    _, args = parse(["score", "in", "out", "--targets", "a.jsonl", "--targets", "b.jsonl"])
    assert args.targets == ("a.jsonl", "b.jsonl")


def test_flags_and_their_negations():
    assert parse(["dedup", "in", "out", "--no-verify"])[1].verify is False
    assert parse(["dedup", "in", "out"])[1].verify is True
    assert parse(["tier", "in", "out", "--no-dedup"])[1].dedup is False
    assert parse(["dedup", "in", "out", "--id-column", "none"])[1].id_column is None
    assert parse(["dedup", "in", "out"])[1].id_column == "id"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["dedup", "in"], "Missing argument 'OUTPUT'"),
        (["dedup", "in", "out", "--engine", "gpu"], "'gpu' is not one of"),
        (["score", "in", "out"], "Missing option '--targets'"),
        (["dedup", "in", "out", "--threshold", "high"], "'high' is not a valid float"),
        (["no-such-command"], "No such command"),
        (["select", "qqt", "--budgets", "1e6"], "Missing option '--params'"),
    ],
)
def test_usage_mistakes_are_one_message_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_missing_input_is_a_user_error_before_any_engine_starts(tmp_path, capsys):
    assert main(["dedup", str(tmp_path / "absent"), str(tmp_path / "out"), "--engine", "local"]) == 2
    assert "input not found" in capsys.readouterr().err


def test_every_command_explains_itself():
    commands = list(_leaves(build_cli()))
    assert ("containment", "plan") in commands and ("select", "qqt") in commands and ("dedup",) in commands
    for path in commands:
        out = subprocess.run([sys.executable, "-m", "flows.cli", *path, "--help"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"Usage: tierlake {' '.join(path)}") and "--quiet" in out.stdout, path
    top = subprocess.run([sys.executable, "-m", "flows.cli"], capture_output=True, text=True)
    assert top.returncode == 0 and "quick start" in top.stdout


def test_nothing_below_the_cli_imports_it():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = []
    for package in ("connectors", "curation", "tiers", "flows"):
        for path in (root / package).rglob("*.py"):
            if path.name == "cli.py" or path.name == "spark_entry.py":  # spark_entry is the CLI's entry inside spark-submit
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                )
                if any(n == "flows.cli" or n.startswith("flows.cli.") for n in names):
                    offenders.append(str(path.relative_to(root)))
    assert offenders == []
