"""Parameters, decorators' own validation and cron expressions: checked when the flow is defined."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mloop.errors import InvalidInputError
from mloop.flows import FlowSpec, Parameter, catch, retry, step, timeout
from mloop.flows.cron import CronSchedule


class Params(FlowSpec):
    alpha = Parameter(float, default=0.1, min=0, max=1)
    layers = Parameter(list, default=[1, 2])
    debug = Parameter(bool, default=False)
    name = Parameter(str)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_parameters_parse_cli_strings_and_apply_defaults() -> None:
    values = Params.resolve_params({"alpha": "0.5", "layers": "[3, 4]", "debug": "yes", "name": "x"})
    assert values == {"alpha": 0.5, "layers": [3, 4], "debug": True, "name": "x"}
    assert Params.resolve_params({"name": "y"})["alpha"] == 0.1


@pytest.mark.parametrize(("given", "field"), [
    ({"name": "x", "alpha": "2"}, "--alpha"), ({"name": "x", "alpha": "nan"}, "--alpha"),
    ({"name": "x", "layers": "{}"}, "--layers"), ({"name": "x", "debug": "maybe"}, "--debug"),
    ({}, "--name"), ({"name": "x", "beta": "1"}, "--beta")])
def test_bad_parameters_name_the_field(given, field) -> None:
    with pytest.raises(InvalidInputError) as info:
        Params.resolve_params(given)
    assert info.value.field == field


@pytest.mark.parametrize(("param", "given", "says"), [
    (Parameter(int), "1.5", "--p: got '1.5', expected an integer."),
    (Parameter(int, min=1, max=10), "20", "expected an integer in [1, 10]."),
    (Parameter(float), "fast", "expected a number."),
    (Parameter(bool), "maybe", "expected true or false."),
    (Parameter(list), "{}", "expected a list (a JSON list on the command line)."),
    (Parameter(dict), "[1]", "expected a dict (a JSON object on the command line)."),
    (Parameter(str, choices=["big", "small"]), "huge", "expected one of ['big', 'small']."),
])
def test_bad_parameter_messages_name_the_type_in_plain_words(param, given, says) -> None:
    param.name = "p"
    with pytest.raises(InvalidInputError) as info:
        param.parse(given)
    assert says in str(info.value)


@pytest.mark.parametrize(("param", "given"), [
    (Parameter(str, default="x"), None),  # str(None) would be "None"
    (Parameter(int, default=1), True),  # int(True) would be 1
    (Parameter(float, default=1.0), False),
    (Parameter(list, default=[]), {"a": 1}),  # list({...}) would keep only the keys
    (Parameter(dict, default={}), [("a", 1)]),
])
def test_python_values_are_never_coerced_silently(param, given) -> None:
    param.name = "p"
    with pytest.raises(InvalidInputError, match="--p"):
        param.parse(given)


def test_none_is_a_value_where_the_default_is_none_and_tuples_are_lists() -> None:
    assert Parameter(int, default=None).parse(None) is None
    assert Parameter(str, default=None).parse(None) is None
    assert Parameter(list, default=[]).parse((1, 2)) == [1, 2]
    with pytest.raises(InvalidInputError, match="params"):
        Params.resolve_params([("name", "x")])


def test_decorator_arguments_are_validated() -> None:
    with pytest.raises(InvalidInputError, match="retry.times"):
        retry(times=-1)
    with pytest.raises(InvalidInputError, match="timeout.seconds"):
        timeout(seconds=0)
    for var in (5, "", "input", "_private", "two words"):
        with pytest.raises(InvalidInputError, match="catch.var"):
            catch(var=var)


@pytest.mark.parametrize("expression", ["* * * *", "61 * * * *", "*/0 * * * *", "* * * foo *", "5-1 * * * *"])
def test_bad_cron_expressions_are_refused(expression) -> None:
    with pytest.raises(InvalidInputError):
        CronSchedule.parse(expression)


def test_cron_matching_and_next_time() -> None:
    every5 = CronSchedule.parse("*/5 * * * *")
    assert every5.matches(datetime(2026, 3, 1, 10, 5, tzinfo=UTC))
    assert not every5.matches(datetime(2026, 3, 1, 10, 7, tzinfo=UTC))
    assert every5.next_after(datetime(2026, 3, 1, 10, 7, tzinfo=UTC)) == datetime(2026, 3, 1, 10, 10, tzinfo=UTC)
    monthly = CronSchedule.parse("@monthly")
    assert monthly.next_after(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    either = CronSchedule.parse("0 0 13 * fri")  # day 13 OR Fridays, as cron does
    assert either.matches(datetime(2026, 3, 13, tzinfo=UTC)) and either.matches(datetime(2026, 3, 6, tzinfo=UTC))


def test_an_unknown_executor_name_is_refused_before_running(tmp_path) -> None:
    import mloop.flows

    with pytest.raises(InvalidInputError) as info:
        mloop.flows.run(str(tmp_path / "missing.py"), executor="rey")
    assert info.value.field == "executor"
    assert "rey" in str(info.value)


def test_foreach_items_are_positional_sequences() -> None:
    import numpy as np
    import pandas as pd

    from mloop.flows.spec import _check_foreach_items

    for items in ([1], (1, 2), range(3), np.arange(3), pd.Index(["a"]), [("a", 1)]):
        _check_foreach_items("items", items)
    for items, hint in ((np.float64(1.0), "a list, tuple or array"), (pd.Series([1, 2]), ".tolist()"),
                        ({"a": 1}.keys(), "list(...) of it"), (bytearray(b"ab"), "a list, tuple or array")):
        with pytest.raises(InvalidInputError, match="foreach items") as info:
            _check_foreach_items("items", items)
        assert hint in str(info.value)


def test_list_parameters_take_python_sequences_and_mappings_are_params() -> None:
    from types import MappingProxyType

    import numpy as np

    assert Parameter(list, default=[]).parse(range(3)) == [0, 1, 2]
    assert Parameter(list, default=[]).parse(np.array([1, 2])) == [1, 2]
    assert Params.resolve_params(MappingProxyType({"name": "x"}))["name"] == "x"


def test_the_reserved_parameter_names_are_the_options_of_flow_run() -> None:
    """graph.CLI_OPTIONS is written out (the graph check must not import the CLI): it must follow the command."""
    import typer

    from mloop.cli import flow  # noqa: F401  (registers `mloop flow`)
    from mloop.cli._app import app
    from mloop.flows.graph import CLI_OPTIONS

    run = typer.main.get_command(app).commands["flow"].commands["run"]  # type: ignore[attr-defined]
    options = {name.lstrip("-").replace("-", "_") for p in run.params for name in p.opts if name.startswith("--")}
    assert options | {"help"} == CLI_OPTIONS  # click adds --help itself
