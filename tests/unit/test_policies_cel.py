"""Policy expressions: what compiles, what is refused where and why, and verdicts that fail closed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.configurations import content
from chalicelib.policies import cel, inputs
from chalicelib.policies.cel import ExpressionError, Verdict, compile_expression

ROOT = Path(__file__).resolve().parents[2]
YAML = content.YAML

NO_DEBUG_IN_PROD = ("!(has(agent.labels.env) && agent.labels.env == 'prod' "
                    "&& config.text.contains('debug'))")
CONFIG_TEXT = """\
receivers:
  otlp: {protocols: {grpc: {}}}
exporters:
  debug: {verbosity: detailed}
  otlp: {endpoint: "collector:4317"}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp]}
    logs: {receivers: [otlp], exporters: [debug, otlp]}
replicas: three
enabled: 1
"""


def agent(**changes: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": "0123456789abcdef0123456789abcdef", "groupId": "edge",
        "labels": {"env": "prod", "tier": "edge"}, "version": "0.98.0", "type": "otelcol",
        "status": "online", "online": True, "capabilities": ["AcceptsRemoteConfig"],
        "health": {"healthy": True, "status": "ok", "lastError": ""},
        "description": {"identifyingAttributes": {"service.name": "otelcol"},
                        "nonIdentifyingAttributes": {"os.type": "linux"}}}
    wire.update(changes)
    return inputs.agent_input(wire)


def config(text: str = CONFIG_TEXT) -> dict[str, Any]:
    return inputs.config_input(YAML, text, configuration_id="gateway", version=2,
                               name="Gateway", file_name="config.yaml")


def variables(**changes: Any) -> dict[str, Any]:
    return {"agent": agent(), "config": config(),
            "rollout": inputs.rollout_input({"strategy": "waves", "waves": 3}), **changes}


def refusal(source: str, scope: str = "rollout") -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, scope)
    return caught.value


# --- what compiles ---------------------------------------------------------------------------

@pytest.mark.parametrize(("scope", "source"), [
    ("rollout", "true"),
    ("rollout", NO_DEBUG_IN_PROD),
    ("rollout", "agent.version.startsWith('0.9') && rollout.strategy == 'waves'"),
    ("rollout", "agent['labels']['tier'] == 'edge' || agent.groupId in ['edge', 'core']"),
    ("rollout", "size(agent.capabilities) > 0 && 'AcceptsRemoteConfig' in agent.capabilities"),
    ("rollout", "agent.labels.all(k, agent.labels[k] != '')"),
    ("rollout", "agent.health.healthy ? agent.online : false"),
    ("rollout", "type(agent.configuration.version) == int && agent.configuration.version >= 0"),
    ("rollout", "agent.attributes['os.type'] == 'linux'"),
    ("publish", "!config.text.contains('debug')"),
    ("publish", "config.parsed.replicas > 2"),
    ("publish", "config.parsed.service.pipelines.exists(p, "
                "'debug' in config.parsed.service.pipelines[p].exporters)"),
    ("publish", "config.parsed.pipelines.all(p, p.exporters.all(e, e != 'debug'))"),
    ("publish", "config.size < 65536 && config.sha256 != '' && config.version >= 1"),
    ("publish", "timestamp('2026-01-01T00:00:00Z') < timestamp('2027-01-01T00:00:00Z')"),
    ("publish", "config.text.matches('^receivers:') // a comment"),
    ("publish", "[1, 2, 3].map(x, x * 2).filter(y, y > 2).size() == 2"),
])
def test_valid_expressions_compile(scope: str, source: str) -> None:
    compiled = compile_expression(source, scope)

    assert (compiled.source, compiled.scope) == (source, scope)


def test_a_compiled_expression_knows_the_variables_it_reads() -> None:
    assert compile_expression(NO_DEBUG_IN_PROD, "rollout").variables == {"agent", "config"}
    assert compile_expression("true", "rollout").variables == frozenset()


def test_unknown_scopes_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        compile_expression("true", "deploy")


# --- syntax ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "line", "column"), [
    ("agent.labels.env ==", 1, 20),
    ("1 +", 1, 4),
    ("agent.labels.env == 'prod' &&\n  config.text.contains('debug'", 2, 31),
    ("'é' == 'e' &&", 1, 14),
    ("agent.labels[", 1, 14),
    ("(agent.online", 1, 14),
    ("x = 1", 1, 3),
    ("'unterminated", 1, 1),
    ("", 1, 1),
    ("if", 1, 1),
    ("agent.labels.?env", 1, 13),
])
def test_syntax_errors_name_their_line_and_column(source: str, line: int, column: int) -> None:
    error = refusal(source)

    assert (error.line, error.column) == (line, column)
    assert error.message.startswith("syntax error")
    assert error.offset == sum(len(text) + 1 for text in source.split("\n")[:line - 1]) \
        + column - 1


@pytest.mark.parametrize(("source", "column"), [
    ("agent.labels[1", 15),
    ("agent.online && )", 17),
    ("[1, 2 3]", 7),
])
def test_an_engine_error_without_a_place_is_placed_by_reading_the_expression(
        source: str, column: int) -> None:
    # Given the engine's message naming no position (as when its parser panics)
    error = cel.engine_error(source, f"Failed to parse expression '{source}': Invalid syntax")
    # Then the error points at the first token that cannot be read
    assert (error.line, error.column) == (1, column)


# --- names -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("scope", "source", "column", "message"), [
    ("rollout", "foo == 1", 1, "unknown variable 'foo'; rollout policies see agent, config, "
                               "rollout"),
    ("publish", "agent.labels.env == 'prod'", 1,
     "'agent' is not available to publish policies, which see config"),
    ("publish", "config.version > 1 && rollout.waves > 1", 23,
     "'rollout' is not available to publish policies"),
    ("rollout", "agent.labels.exists(k, k == 'env') && k == 'env'", 39, "unknown variable 'k'"),
    ("rollout", "[1].exists(config, config > 0)", 5,
     "the comprehension variable 'config' hides the policy variable"),
    ("rollout", "optional.of(1) != null", 1, "unknown variable 'optional'"),
])
def test_unknown_variables_are_refused_per_scope(scope: str, source: str, column: int,
                                                 message: str) -> None:
    error = refusal(source, scope)

    assert error.message.startswith(message) and (error.line, error.column) == (1, column)


@pytest.mark.parametrize(("source", "column", "message"), [
    ("agent.lables.env == 'x'", 7, "agent has no field 'lables'; did you mean 'labels'?"),
    ("agent.health.ok", 14, "agent.health has no field 'ok'; its fields are reported, healthy"),
    ("has(config.parsd)", 12, "config has no field 'parsd'; did you mean 'parsed'?"),
    ("rollout['wave'] > 1", 9, "rollout has no field 'wave'; did you mean 'waves'?"),
])
def test_unknown_fields_are_refused(source: str, column: int, message: str) -> None:
    error = refusal(source)

    assert error.message.startswith(message) and error.column == column


@pytest.mark.parametrize(("source", "column", "message"), [
    ("agent.version.lowerAscii() == 'x'", 15, "unknown function 'lowerAscii'"),
    ("max(1, 2) == 2", 1, "unknown function 'max'"),
    ("contains(agent.version, 'x')", 1, "contains() is called on a value, as x.contains(...)"),
    ("agent.labels.size(1) > 0", 14, "size() takes 0 argument(s) here, not 1"),
    ("agent.version.int() > 0", 15, "int() is called as int(x), not on a value"),
    ("Policy{name: 'x'} == null", 7, "message construction"),
])
def test_unknown_functions_are_refused(source: str, column: int, message: str) -> None:
    error = refusal(source)

    assert error.message.startswith(message) and error.column == column


# --- types -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "column", "message"), [
    ("agent.labels + 1 == 2", 14, "no '+' for map(string, string) and int"),
    ("config.text > 3", 13, "no '>' for string and int"),
    ("rollout.waves + 1.5 > 0.0", 15, "no '+' for int and double"),
    ("agent.version.startsWith(1)", 15, "no startsWith() for string and int"),
    ("-agent.version == ''", 1, "no '-' for string"),
    ("!agent.version", 8, "'!' needs bool, not string"),
    ("agent.online && agent.labels", 23, "'&&' needs bool, not map(string, string)"),
    ("agent.version ? true : false", 7, "'?:' needs bool, not string"),
    ("agent.version.all(c, true)", 7, "cannot iterate over string"),
    ("agent.labels.exists(k, k.size())", 26, "the condition of exists() must be bool, not int"),
    ("agent.version.major == '1'", 15, "cannot read the field 'major' of string"),
    ("has(agent.version.major)", 19, "has() tests a field of a map, not of string"),
    ("agent.version", 7, "the expression returns string, not bool"),
    ("size(agent.labels)", 1, "the expression returns int, not bool"),
])
def test_type_errors_are_refused_at_compile_time(source: str, column: int,
                                                 message: str) -> None:
    error = refusal(source)

    assert error.message.startswith(message) and error.column == column


@pytest.mark.parametrize(("source", "column", "message"), [
    ("timestamp('yesterday') < timestamp('2026-01-01T00:00:00Z')", 1,
     "Function 'timestamp' error"),
    ("duration('1 day') > duration('1h')", 1, "Function 'duration' error"),
    ("agent.configuration.version > 1 / 0", 33, "division by zero"),
    ("agent.version.matches('(')", 23, "Function 'matches' error: '(' not a valid regex"),
])
def test_calls_on_literals_that_always_fail_are_refused(source: str, column: int,
                                                        message: str) -> None:
    error = refusal(source)

    assert error.message.startswith(message) and error.column == column


@pytest.mark.parametrize("source", [
    "config.parsed.replicas > 3",
    "config.parsed.x + 1 == 2",
    "agent.attributes['service.name'].startsWith('otel')",
    "config.parsed",
])
def test_what_only_data_can_tell_is_left_to_evaluation(source: str) -> None:
    # Given values of dynamic type (parsed documents, attributes) / Then nothing is assumed
    assert compile_expression(source, "rollout").source == source


# --- size and cost ---------------------------------------------------------------------------

def test_expressions_are_bounded_in_length() -> None:
    longest = "true" + " " * (cel.MAX_EXPRESSION_LENGTH - 4)
    assert compile_expression(longest, "publish").source == longest

    error = refusal(longest + " ", "publish")
    assert error.message == (f"the expression is {cel.MAX_EXPRESSION_LENGTH + 1} characters "
                             f"long; at most {cel.MAX_EXPRESSION_LENGTH} are allowed")
    assert error.offset == cel.MAX_EXPRESSION_LENGTH


@pytest.mark.parametrize(("source", "column", "message"), [
    ("(" * 33 + "true" + ")" * 33, 33, "the expression nests deeper than 32 levels"),
    ("[1].all(a, [2].all(b, [3].all(c, true)))", 27, "comprehensions nest deeper than 2"),
    (" && ".join(f"[{i}].all(x, x > 0)" for i in range(9)), 173, "more than 8 comprehensions"),
    ("config.parsed.a.all(x, config.parsed.b.all(y, x == y))", 1,
     "the expression may cost about"),
])
def test_costly_expressions_are_refused(source: str, column: int, message: str) -> None:
    error = refusal(source, "publish")

    assert error.message.startswith(message) and error.column == column


@pytest.mark.parametrize(("source", "at_most"), [
    ("agent.labels.env == 'prod'", 10),
    ("agent.labels.all(k, agent.labels[k] != '')", 64 * 8),
    # a comprehension over parts of each element counts the data once, not squared
    ("config.parsed.a.all(x, x.b.all(y, y > 0))", 10 * cel.TYPICAL_VALUES),
    ("config.parsed.a.all(x, config.parsed.b.all(y, y > 0))", 5 * cel.TYPICAL_VALUES ** 2),
])
def test_the_cost_estimate_follows_the_sizes_of_what_is_iterated(source: str,
                                                                 at_most: int) -> None:
    assert 0 < compile_expression(source, "rollout").cost <= at_most


# --- verdicts --------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "changes", "allowed"), [
    ("true", {}, True),
    ("false", {}, False),
    (NO_DEBUG_IN_PROD, {}, False),
    (NO_DEBUG_IN_PROD, {"agent": agent(labels={"env": "dev"})}, True),
    (NO_DEBUG_IN_PROD, {"agent": agent(labels={})}, True),
    (NO_DEBUG_IN_PROD, {"config": config("receivers: {otlp: {}}\n")}, True),
    ("!('env' in agent.labels && agent.labels.env == 'prod') "
     "|| !has(config.parsed.exporters.debug)", {}, False),
    ("config.parsed.service.pipelines.exists(p, "
     "'debug' in config.parsed.service.pipelines[p].exporters)", {}, True),
    ("agent.version.startsWith('0.9') && rollout.waves >= 3", {}, True),
    ("agent.version.startsWith('0.9') && rollout.waves >= 3",
     {"rollout": inputs.rollout_input({"waves": 2})}, False),
    ("agent.attributes['os.type'] == 'linux' && agent.health.healthy", {}, True),
    # a map read both by name and whole is given whole
    ("agent.labels.env == 'prod' && size(agent.labels) == 2", {}, True),
    ("has(agent.labels.tier) && !has(agent.labels.region) && size(agent.attributes) == 2",
     {}, True),
    ("agent.labels['tier'] == 'edge' && agent.labels.exists(k, k == 'env')", {}, True),
])
def test_verdicts(source: str, changes: dict[str, Any], allowed: bool) -> None:
    verdict = compile_expression(source, "rollout").evaluate(variables(**changes))

    assert verdict == Verdict(allowed, None)


@pytest.mark.parametrize(("source", "changes", "error"), [
    ("agent.labels.env == 'prod'", {"agent": agent(labels={})}, "no such key: env"),
    ("config.parsed.replicas > 3", {}, "No such overload: the operation is not defined for the "
                                       "given operand types"),
    ("config.parsed.enabled", {}, "the expression returned int, not a bool"),
    ("config.parsed.missing.all(x, x)", {}, "no such key: missing"),
    ("config.parsed.replicas.all(x, true)", {}, "No such overload"),
    ("agent.labels.env == 'prod'", {"agent": None}, "no value for the variable 'agent'"),
    ("config.text == ''", {"config": {"text": {1, 2}}}, "Failed to convert variable 'config'"),
])
def test_evaluation_errors_deny_with_their_own_message(source: str, changes: dict[str, Any],
                                                       error: str) -> None:
    verdict = compile_expression(source, "rollout").evaluate(variables(**changes))

    assert verdict.allowed is False
    assert verdict.error is not None and verdict.error.startswith(error)


def test_a_missing_variable_denies() -> None:
    verdict = compile_expression(NO_DEBUG_IN_PROD, "rollout").evaluate({"config": config()})

    assert verdict == Verdict(False, "no value for the variable 'agent'")


def test_an_evaluation_over_the_cost_bound_for_its_input_denies() -> None:
    # Given two nested comprehensions over configuration data, fine for a typical document
    compiled = compile_expression(
        "config.parsed.a.all(x, config.parsed.b.all(y, y >= 0))", "publish")
    small = config("a: [1, 2]\nb: [3]\n")
    assert compiled.evaluate({"config": small}) == Verdict(True, None)
    # When the document holds 100 000 values / Then the evaluation is refused, closed
    big = config("a: [" + ", ".join("1" for _ in range(50_000)) + "]\nb: [" +
                 ", ".join("2" for _ in range(49_990)) + "]\n")
    verdict = compiled.evaluate({"config": big})
    assert verdict.allowed is False and verdict.error is not None
    assert re.fullmatch(r"the expression may take \d+ steps over these inputs \(99993 values\); "
                        r"at most 10000000 are allowed", verdict.error)


def test_one_compiled_expression_serves_many_inputs() -> None:
    # Given one compiled policy and two configurations, each shared by many agents
    compiled = compile_expression(
        "!(agent.labels.env == 'prod' && has(config.parsed.exporters.debug))", "rollout")
    with_debug, without = config(), config("exporters: {otlp: {}}\n")
    prod, dev = agent(), agent(labels={"env": "dev"})
    # When they are evaluated in turn / Then each verdict is its own inputs'
    for _ in range(3):
        assert not compiled.evaluate({"agent": prod, "config": with_debug}).allowed
        assert compiled.evaluate({"agent": dev, "config": with_debug}).allowed
        assert compiled.evaluate({"agent": prod, "config": without}).allowed


def test_a_selection_and_an_index_read_the_same() -> None:
    variables_ = variables()
    for source in ("config.parsed.exporters.debug.verbosity == 'detailed'",
                   "config['parsed']['exporters']['debug']['verbosity'] == 'detailed'",
                   "has(config.parsed.exporters.debug) && config.parsed.exporters.otlp != null"):
        assert compile_expression(source, "rollout").evaluate(variables_) == Verdict(True)


# --- the documented examples -----------------------------------------------------------------

def documented_examples() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "policies.md").read_text()
    blocks = re.findall(r"```cel\n(.*?)```", text, flags=re.DOTALL)
    return [(re.match(r"// scope: (\w+)", block)[1], block) for block in blocks]  # type: ignore[index]


@pytest.mark.parametrize(("scope", "source"), documented_examples())
def test_every_documented_example_compiles_and_decides(scope: str, source: str) -> None:
    compiled = compile_expression(source, scope)
    # Given a described agent and a full configuration, or an agent that reported nothing and
    # a configuration without the parts the examples look at / Then each decides, no error
    bare = {"agent": inputs.agent_input({"id": "a"}), "config": config("receivers: {}\n"),
            "rollout": inputs.rollout_input({})}
    assert compiled.evaluate(variables()).error is None
    assert compiled.evaluate(bare).error is None


# --- the engine ------------------------------------------------------------------------------

def test_the_engine_loads_without_its_command_line_interface() -> None:
    code = ("import json, sys\nfrom chalicelib.policies import cel\n"
            "loaded = cel.engine()\nbefore = sorted(sys.modules)\nimport cel as package\n"
            "print(json.dumps([loaded.__name__, 'typer' in before, 'rich' in before, "
            "'cel' in before, package.compile is loaded.compile]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out) == ["cel.cel", False, False, False, True]
