"""The static graph of a flow, read from the AST of its step methods, and the checks run before anything runs.

Each error names the step and its ``file:line`` and says how to fix it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import InvalidInputError


class FlowDefinitionError(InvalidInputError):
    """The flow's graph is wrong; the message says where (file:line) and how to fix it."""

    error_code = "INVALID_FLOW"


@dataclass
class Node:
    """One step: what it may go to and how (linear, branches, foreach, switch, join, end)."""

    name: str
    line: int
    file: str
    out: list[str] = field(default_factory=list)
    kind: str = "linear"  # linear | split | foreach | switch | end
    foreach: str | None = None
    condition: str | None = None
    is_join: bool = False
    next_lines: list[int] = field(default_factory=list)
    target_lines: dict[str, int] = field(default_factory=dict)  # where self.next(...) names each target
    source: str = ""
    decorators: dict[str, dict[str, Any]] = field(default_factory=dict)
    func: Callable[..., Any] | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class FlowGraph:
    name: str
    nodes: dict[str, Node]

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def order(self) -> list[str]:
        """Steps in breadth-first order from ``start``."""
        seen, queue = [], ["start"]
        while queue:
            name = queue.pop(0)
            if name in seen or name not in self.nodes:
                continue
            seen.append(name)
            queue.extend(self.nodes[name].out)
        return seen

    def descendants(self, name: str) -> set[str]:
        found, stack = set(), [name]
        while stack:
            current = stack.pop()
            if current in found:
                continue
            found.add(current)
            stack.extend(self.nodes[current].out)
        return found


def build_graph(flow: type) -> FlowGraph:
    """Read the graph of ``flow`` from its source and check it; raises FlowDefinitionError."""
    steps = flow._steps()  # type: ignore[attr-defined]
    nodes = {}
    for name, func in steps.items():
        nodes[name] = _node(name, func)
    graph = FlowGraph(flow.__name__, nodes)
    check_graph(graph, flow)
    return graph


def _node(name: str, func: Callable[..., Any]) -> Node:
    from mloop.flows.spec import decorators_of

    try:
        lines, first = inspect.getsourcelines(func)
        file = inspect.getsourcefile(func) or "<unknown>"
    except (OSError, TypeError) as exc:
        raise FlowDefinitionError(f"Cannot read the source of step '{name}' ({exc}); define flows in a .py file.",
                                  field=name) from exc
    source = textwrap.dedent("".join(lines))
    tree = ast.parse(source)
    fdef = tree.body[0]
    assert isinstance(fdef, ast.FunctionDef | ast.AsyncFunctionDef)
    offset = first - 1
    node = Node(name=name, line=fdef.lineno + offset, file=file, source=source, decorators=decorators_of(func),
                func=func)
    for item in fdef.decorator_list:  # the def line, not the first decorator's
        node.line = max(node.line, item.end_lineno + 1 + offset if item.end_lineno else node.line)
    node.is_join = len(fdef.args.args) >= 2
    for call in ast.walk(fdef):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "next"
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "self"):
            continue
        node.next_lines.append(call.lineno + offset)
        keywords = {k.arg: k.value for k in call.keywords}
        _check_condition_shape(call, keywords, node, call.lineno + offset)
        targets: list[str] = []
        for arg in call.args:
            if isinstance(arg, ast.Dict):
                targets += [_target(v, node, call.lineno + offset) for v in arg.values]
                node.kind = "switch"
            else:
                targets.append(_target(arg, node, call.lineno + offset))
        for target in targets:
            node.target_lines.setdefault(target, call.lineno + offset)
        if "foreach" in keywords:
            node.kind = "foreach"
            node.foreach = _constant(keywords["foreach"], node, "foreach")
        if "condition" in keywords:
            node.kind = "switch"
            node.condition = _constant(keywords["condition"], node, "condition")
        elif node.kind != "foreach" and len(targets) > 1 and node.kind != "switch":
            node.kind = "split"
        for target in targets:
            if target not in node.out:
                node.out.append(target)
    if not node.next_lines:
        node.kind = "end"
    return node


def _check_condition_shape(call: ast.Call, keywords: dict[str | None, ast.expr], node: Node, line: int) -> None:
    """A choice is one dict of arms plus condition=; either alone would only fail when the step runs."""
    has_dict = any(isinstance(arg, ast.Dict) for arg in call.args)
    if has_dict and "condition" not in keywords:
        raise FlowDefinitionError(f"{node.file}:{line}: step '{node.name}' passes a dict of arms to self.next() "
                                  "without condition=; name the artifact that chooses, e.g. "
                                  "self.next({...}, condition=\"kind\").", field=node.name)
    if "condition" in keywords and (len(call.args) != 1 or not isinstance(call.args[0], ast.Dict)):
        raise FlowDefinitionError(f"{node.file}:{line}: step '{node.name}' passes condition= but not one dict of "
                                  "arms; write self.next({\"a\": self.a, \"b\": self.b}, condition=...).",
                                  field=node.name)


def _target(arg: ast.expr, node: Node, line: int) -> str:
    if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "self":
        return arg.attr
    raise FlowDefinitionError(f"{node.file}:{line}: step '{node.name}' calls self.next() with "
                              f"'{ast.unparse(arg)}'; name steps as self.<step>.", field=node.name)


def _constant(value: ast.expr, node: Node, what: str) -> str:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    raise FlowDefinitionError(f"{node.where}: step '{node.name}' passes {what}={ast.unparse(value)}; "
                              f"give the artifact's name as a string, e.g. {what}=\"items\".", field=node.name)


def check_graph(graph: FlowGraph, flow: type) -> None:
    """Every check Metaflow's linter makes that matters, each a clear error."""
    nodes = graph.nodes
    if "start" not in nodes:
        raise FlowDefinitionError(f"Flow {graph.name} has no 'start' step; add a @step method named start.",
                                  field="start")
    if "end" not in nodes:
        raise FlowDefinitionError(f"Flow {graph.name} has no 'end' step; add a @step method named end "
                                  "(it calls no self.next()).", field="end")
    for node in nodes.values():
        for target in node.out:
            if target not in nodes:
                raise FlowDefinitionError(
                    f"{node.file}:{node.next_lines[0]}: step '{node.name}' goes to unknown step '{target}'; "
                    f"steps are {sorted(nodes)}.", field=node.name)
        if node.name == "end" and node.out:
            raise FlowDefinitionError(f"{node.where}: the end step must not call self.next().", field="end")
        if node.name != "end" and not node.out:
            raise FlowDefinitionError(f"{node.where}: step '{node.name}' has no self.next(...); every step but "
                                      "end must say what follows.", field=node.name)
        if len(node.next_lines) > 1 and node.kind != "switch":
            raise FlowDefinitionError(f"{node.file}:{node.next_lines[1]}: step '{node.name}' calls self.next() "
                                      "more than once; use one call (a dict with condition= for a choice).",
                                      field=node.name)
        if node.kind == "foreach" and len(node.out) != 1:
            raise FlowDefinitionError(f"{node.where}: step '{node.name}' fans out with foreach to "
                                      f"{len(node.out)} steps; foreach takes exactly one.", field=node.name)
        _check_catch(node, flow)
    _check_parameter_names(graph, flow)
    reachable = set(graph.order())
    for name, node in nodes.items():
        if name not in reachable:
            raise FlowDefinitionError(f"{node.where}: step '{name}' is unreachable from start; call "
                                      f"self.next(self.{name}) from an earlier step or remove it.", field=name)
    _check_splits(graph)


# Options of `mloop flow run` (as parameter names: dashes become underscores): a parameter with one of these
# names could never be set from the command line, the option would take its value.
CLI_OPTIONS = frozenset({"tag", "executor", "ray_address", "max_workers", "flow", "home", "help", "schedule_due"})


def _check_parameter_names(graph: FlowGraph, flow: type) -> None:
    from mloop.flows.spec import RESERVED_ARTIFACTS, FlowSpec

    spec_names = {n for n in dir(FlowSpec) if not n.startswith("__")}
    for name in flow._parameters():  # type: ignore[attr-defined]
        if name in RESERVED_ARTIFACTS:
            why = "mloop sets self.input and self.index in foreach tasks, which would hide it"
        elif name in CLI_OPTIONS:
            why = f"it is an option of 'mloop flow run' (--{name.replace('_', '-')}), so it could not be set"
        elif name in spec_names or name.startswith("_"):
            why = "FlowSpec uses that name" if name in spec_names else "names starting with _ are mloop's"
        else:
            continue
        raise FlowDefinitionError(f"{_parameter_line(flow, name)}: parameter '{name}' of {graph.name}: {why}; "
                                  "rename it.", field=name)


def _parameter_line(flow: type, name: str) -> str:
    """``file:line`` of ``name = Parameter(...)`` in the flow's class body (the class line if not found)."""
    import re

    try:
        lines, first = inspect.getsourcelines(flow)
        file = inspect.getsourcefile(flow) or "?"
    except (OSError, TypeError):
        return flow.__name__
    pattern = re.compile(rf"^\s*{re.escape(name)}\s*[:=]")
    offset = next((i for i, line in enumerate(lines) if pattern.match(line)), 0)
    return f"{file}:{first + offset}"


def _check_catch(node: Node, flow: type) -> None:
    """A caught failure goes on to the step's targets, which a foreach or a condition only has once it succeeded."""
    from mloop.flows.spec import shadowing

    if "catch" not in node.decorators:
        return
    var = node.decorators["catch"]["var"]
    clash = shadowing(flow, var)  # the runtime stores the artifact itself, past FlowSpec.__setattr__'s check
    if clash:
        raise FlowDefinitionError(f"{node.where}: step '{node.name}' has @catch(var=\"{var}\"), the name of {clash}; "
                                  "pick another artifact name.", field=node.name)
    if node.kind not in ("foreach", "switch"):
        return
    if node.kind == "foreach":
        why = f'fans out with foreach="{node.foreach}", and a caught failure leaves no list to fan out over'
    else:
        by = f'condition="{node.condition}"' if node.condition else "a condition"
        why = f"chooses its next step by {by}, and a caught failure leaves no value to choose by"
    raise FlowDefinitionError(f"{node.where}: step '{node.name}' has @catch but {why}; move the code that may "
                              f"fail into a step before '{node.name}' and put @catch there.", field=node.name)


# The splits (and foreach) a step is inside, outermost first: (the step that fans out, the branch's first step).
Context = tuple[tuple[str, str], ...]
Arrival = tuple[str, Context]  # a step that goes here, and the context it comes from (before a join closes it)


def _check_splits(graph: FlowGraph) -> None:
    """Every step must be inside the same splits on every path to it, and each split must close in one join.

    The runtime starts a join once every branch of its split has reached it and runs a step once per open
    branch, so without this a branch that goes around its join silently skips the join, and the steps after a
    foreach that is never joined run once per item. ``end`` must be outside every split.
    """
    arrivals = _arrivals(graph)
    join_of = _first_join_of_each_split(graph, arrivals)
    for name in graph.order():
        if graph.nodes[name].is_join:
            _check_join(graph, name, arrivals[name], join_of)
        else:
            _check_same_context(graph, name, arrivals[name], join_of)
    for name, node in graph.nodes.items():
        for target in node.out:
            if node.kind == "split" and graph.nodes[target].is_join:
                raise FlowDefinitionError(f"{node.where}: step '{name}' branches straight into join "
                                          f"'{target}'; put a step on each branch.", field=name)
            if node.kind == "foreach" and graph.nodes[target].is_join:
                raise FlowDefinitionError(f"{node.where}: step '{name}' fans out straight into join "
                                          f"'{target}'; put the step that runs for each item between them.",
                                          field=name)


def _arrivals(graph: FlowGraph) -> dict[str, list[Arrival]]:
    """Walk from start, giving each step the context it is first reached with; keep every edge's context."""
    arrivals: dict[str, list[Arrival]] = {name: [] for name in graph.nodes}
    contexts: dict[str, Context] = {"start": ()}
    queue = ["start"]
    while queue:
        name = queue.pop(0)
        node = graph.nodes[name]
        for target in node.out:
            context = contexts[name]
            if node.kind in ("split", "foreach"):
                context += ((name, target),)
            arrivals[target].append((name, context))
            if target not in contexts:
                contexts[target] = context[:-1] if graph.nodes[target].is_join else context
                queue.append(target)
    return arrivals


def _first_join_of_each_split(graph: FlowGraph, arrivals: dict[str, list[Arrival]]) -> dict[str, str]:
    """Split (or foreach) step -> the first join, in walk order, that one of its branches reaches."""
    join_of: dict[str, str] = {}
    for name in graph.order():
        if graph.nodes[name].is_join:
            for _, context in arrivals[name]:
                if context:
                    join_of.setdefault(context[-1][0], name)
    return join_of


def _check_join(graph: FlowGraph, name: str, arrivals: list[Arrival], join_of: dict[str, str]) -> None:
    """A join closes the innermost split of every step that goes to it: one split, whose branches all meet here."""
    node = graph.nodes[name]
    closes = None
    for source, context in arrivals:
        if not context:
            raise FlowDefinitionError(f"{node.where}: step '{name}' is a join (it takes inputs) but no "
                                      "branch or foreach opens before it; drop the inputs argument or "
                                      "split earlier.", field=name)
        split = context[-1][0]
        closes = closes or split
        if split != closes:
            raise _join_error(graph, source, split, name, f"which also receives the branches of the "
                              f"{_fan(graph, closes)}; a join closes one split or foreach, so give each its own join")
        if join_of[split] != name:
            raise _join_error(graph, source, split, name, f"while its other branches meet in '{join_of[split]}'; "
                              "every branch must reach the same join")


def _join_error(graph: FlowGraph, source: str, split: str, join: str, why: str) -> FlowDefinitionError:
    node = graph.nodes[source]
    return FlowDefinitionError(f"{node.file}:{node.target_lines[join]}: step '{source}' is inside the "
                               f"{_fan(graph, split)} and goes to join '{join}', {why}.", field=source)


def _check_same_context(graph: FlowGraph, name: str, arrivals: list[Arrival], join_of: dict[str, str]) -> None:
    """Branches meet only in a join, and a step inside a split goes on only to steps inside it (end to none)."""
    if not arrivals:
        return  # start, when no loop goes back to it
    # start and end sit outside every split; a loop back to start must come from there too
    expected: Arrival = ("", ()) if name in ("start", "end") else arrivals[0]
    for arrival in arrivals:
        if arrival[1] == expected[1]:
            continue
        splits, expected_splits = [s for s, _ in arrival[1]], [s for s, _ in expected[1]]
        if splits == expected_splits:  # the same splits, different branches of the innermost one
            node = graph.nodes[name]
            raise FlowDefinitionError(f"{node.where}: step '{name}' receives several branches but takes no "
                                      f"inputs; declare it as def {name}(self, inputs).", field=name)
        # Blame the step that leaves a split: the deeper one when one context extends the other, else the later.
        expected_is_deeper = splits == expected_splits[:len(splits)]
        raise _leaves_split_error(graph, expected if expected_is_deeper else arrival, name, join_of)


def _leaves_split_error(graph: FlowGraph, leaving: Arrival, target: str,
                        join_of: dict[str, str]) -> FlowDefinitionError:
    source, context = leaving
    node = graph.nodes[source]
    split = context[-1][0]
    join = join_of.get(split)
    fix = (f"every branch must reach the join '{join}' before the flow goes on" if join else
           f"close the {graph.nodes[split].kind} with a join step that takes inputs, e.g. def join(self, inputs), "
           f"before '{target}'")
    return FlowDefinitionError(f"{node.file}:{node.target_lines[target]}: step '{source}' is inside the "
                               f"{_fan(graph, split)} but goes to '{target}' instead of a join; {fix}.",
                               field=source)


def _fan(graph: FlowGraph, split: str) -> str:
    return f"{graph.nodes[split].kind} at '{split}'"
