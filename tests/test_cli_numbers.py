"""Every numeric option of every subcommand goes through one parser with the API's limits.

Out-of-range, malformed and overflowing values are one ``tvm-wasm: error:``
line and exit 2; the limits themselves are accepted. The sweep walks the real
parser, so a subcommand added later with a bare ``type=int`` fails here.
"""

from __future__ import annotations

import argparse

import pytest

from tvm_wasm.cli import build_parser, main
from tvm_wasm.cli_support import U64_MAX, byte_size, number


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("tvm-wasm: error: ") and "Traceback" not in err
    return lines[0]


def _subparsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, (*path, name))


def numeric_options() -> list[tuple[tuple[str, ...], str, object]]:
    found = []
    for path, parser in _subparsers(build_parser()):
        for action in parser._actions:
            if action.option_strings and action.type is not None and hasattr(action.type, "limits"):
                found.append((path, action.option_strings[-1], action.type))
    return found


def test_no_numeric_option_bypasses_the_parser() -> None:
    for path, parser in _subparsers(build_parser()):
        for action in parser._actions:
            assert action.type not in (int, float), (
                f"{' '.join(path)} {action.option_strings}: use cli_support.number(min, max), not {action.type}"
            )
    options = {(" ".join(path), option) for path, option, _ in numeric_options()}
    assert {("demo", "--budget"), ("guest build", "--pools"), ("guest build", "--max-pages"),
            ("guest build", "--initial-pages"), ("bench", "--samples"), ("bench", "--seed"),
            ("bench", "--layouts"), ("bench", "--threshold"), ("run", "--pools"), ("run", "--budget")} <= options


@pytest.mark.parametrize(("path", "option", "parse"), numeric_options(),
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v) if isinstance(v, str) else "")
def test_each_numeric_option_accepts_its_limits_and_refuses_beyond(path, option, parse, capsys) -> None:
    low, high = parse.limits
    assert parse(str(low)) == low and parse(str(high)) == high
    if isinstance(high, int):
        beyond = [str(high + 1), str(high * 2 + 1), str(1 << 80)] + ([str(low - 1)] if low > 0 else [])
    else:
        beyond = [repr(high * 2), "inf", "nan"] + ([repr(low - 1)] if low > 0 else ["-1"])
    for text in [*beyond, "lots", "", "1.5e"]:
        assert main([*path, option, text]) == 2, (path, option, text)
        out, err = capsys.readouterr()
        assert out == ""
        line = one_error_line(err)
        assert option in line, line


@pytest.mark.parametrize("text", ["18446744073709551616", "17179869185G", "18446744073709551617", "1T", "-1"])
def test_budget_beyond_u64_is_a_usage_error(text: str, capsys) -> None:
    assert main(["demo", "--budget", text]) == 2
    _, err = capsys.readouterr()
    assert "out of range" in one_error_line(err) or "invalid" in one_error_line(err)


def test_budget_at_u64_max_runs(capsys) -> None:
    assert byte_size(str(U64_MAX)) == U64_MAX
    assert main(["demo", "--budget", str(U64_MAX)]) == 0
    assert f"budget {U64_MAX} B met" in capsys.readouterr().out
    assert byte_size("16777215G") == 16777215 << 30  # below 2**64 with a unit


def test_number_rejects_malformed_and_reals() -> None:
    ratio = number(0, 10, real=True)
    assert ratio("2.5") == 2.5
    for text in ("nan", "inf", "-0.1", "10.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            ratio(text)
    count = number(1, 64)
    for text in ("0", "65", "1.0", "0x10", "1K", " "):
        with pytest.raises(argparse.ArgumentTypeError):
            count(text)
    with pytest.raises(ValueError):
        number(2, 1)


def test_no_command_line_in_the_package_parses_numbers_with_bare_int_or_float() -> None:
    """The ``python -m`` helpers (benchmarks) follow the same rule as ``tvm-wasm``."""
    import ast
    from pathlib import Path

    import tvm_wasm

    offenders = []
    for source in Path(tvm_wasm.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                for keyword in node.keywords:
                    if keyword.arg == "type" and isinstance(keyword.value, ast.Name) and keyword.value.id in ("int", "float"):
                        offenders.append(f"{source.name}:{node.lineno}")
    assert offenders == [], f"use cli_support.number(min, max): {offenders}"
