"""Policy evaluation: how fast a typical policy decides over 100,000 agents' inputs.

Reports, for policies reading labels, the version and the configuration:
  * compile time (the checks included), cold (first compile in the process) and warm;
  * evaluations per second and µs per evaluation over 100,000 agents sharing one
    configuration, the way a rollout check or a dry run evaluates them;
  * the same engine program run naively (``Program.execute`` with every variable as a dict),
    on a sample, for comparison;
  * the costliest evaluation the cost bound admits (one comprehension over a configuration
    document of 100,000 values);
  * the engine's import time in a fresh interpreter, the way the app loads it (the compiled
    extension alone) and as ``import cel`` (which also imports its command-line interface).

Inputs are built in memory; nothing touches AWS. Figures only, no assertions.
Run: ``.venv/bin/python bench/policy_eval.py`` (``BENCH_AGENTS``, ``BENCH_RUNS`` to change).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AGENTS = int(os.environ.get("BENCH_AGENTS", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
NAIVE_SAMPLE = 1_000

POLICIES = {
    "typical (labels, version, parsed config)":
        "agent.labels.env != 'prod' || "
        "(agent.version.startsWith('0.9') && "
        "!(has(config.parsed.exporters) && has(config.parsed.exporters.debug)))",
    "no-debug-in-prod (config text)":
        "!(has(agent.labels.env) && agent.labels.env == 'prod' && "
        "config.text.contains('debug'))",
    "heavier (attributes, labels comprehension, pipelines)":
        "agent.attributes['os.type'] == 'linux' && "
        "agent.labels.all(k, agent.labels[k] != '') && "
        "!config.parsed.service.pipelines.exists(p, "
        "'debug' in config.parsed.service.pipelines[p].exporters)",
}

CONFIG = "".join([
    "receivers:\n",
    *(f"  otlp/{i}:\n    protocols:\n      grpc: {{endpoint: '0.0.0.0:{4317 + i}'}}\n"
      f"      http: {{endpoint: '0.0.0.0:{5317 + i}'}}\n" for i in range(40)),
    "processors:\n  batch: {timeout: 5s, send_batch_size: 8192}\n",
    "  memory_limiter: {check_interval: 1s, limit_mib: 512}\n",
    "exporters:\n  otlp: {endpoint: 'collector:4317', tls: {insecure: false}}\n",
    "service:\n  pipelines:\n",
    *(f"    traces/{i}: {{receivers: [otlp/{i}], processors: [memory_limiter, batch], "
      f"exporters: [otlp]}}\n" for i in range(40)),
])


def wire_agent(index: int, rng: random.Random) -> dict[str, Any]:
    """An agent as the API shows it, with the usual labels, attributes and capabilities."""
    host = f"host-{index:06d}"
    version = rng.choice(["0.98.0", "0.97.1", "0.96.0", "1.0.0"])
    return {
        "id": f"{index:032x}", "groupId": "fleet", "name": host, "type": "otelcol-contrib",
        "version": version, "hostName": host, "status": "online", "online": True,
        "labels": {"env": rng.choice(["prod", "staging", "dev"]), "tier": "edge",
                   "region": rng.choice(["eu-west-1", "us-east-1"]), "team": "platform"},
        "description": {
            "identifyingAttributes": {"service.name": "otelcol-contrib",
                                      "service.version": version,
                                      "service.instance.id": f"{index:032x}"},
            "nonIdentifyingAttributes": {"host.name": host, "os.type": "linux",
                                         "host.arch": "amd64", "os.description": "Ubuntu"}},
        "capabilities": ["ReportsStatus", "AcceptsRemoteConfig", "ReportsEffectiveConfig",
                         "ReportsHealth", "ReportsRemoteConfig", "ReportsHeartbeat"],
        "health": {"healthy": True, "status": "StatusOK", "lastError": ""},
        "configuration": {"configurationId": "gateway", "version": 3, "appliedVersion": 3,
                          "status": "applied", "error": None, "drifted": False},
    }


def build_inputs() -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    from chalicelib.policies import inputs

    rng = random.Random(5)
    started = time.perf_counter()
    agents = [inputs.agent_input(wire_agent(index, rng)) for index in range(AGENTS)]
    elapsed = time.perf_counter() - started
    shared = {"config": inputs.config_input("application/yaml", CONFIG,
                                            configuration_id="gateway", version=3,
                                            name="Gateway", file_name="config.yaml"),
              "rollout": inputs.rollout_input({"strategy": "waves", "waves": 3})}
    return agents, shared, elapsed


def compile_times(source: str) -> tuple[float, float]:
    """The first compile of ``source`` in this process (with its engine probes) and a repeat
    with the compiled-expression cache cleared (probes cached)."""
    from chalicelib.policies import cel

    cel._compile.cache_clear()
    started = time.perf_counter()
    cel.compile_expression(source, "rollout")
    cold = time.perf_counter() - started
    cel._compile.cache_clear()
    started = time.perf_counter()
    cel.compile_expression(source, "rollout")
    return cold, time.perf_counter() - started


def evaluate_all(source: str, agents: list[dict[str, Any]],
                 shared: dict[str, Any]) -> tuple[float, int]:
    from chalicelib.policies import cel

    compiled = cel.compile_expression(source, "rollout")
    allowed = 0
    started = time.perf_counter()
    for agent in agents:
        allowed += compiled.evaluate({**shared, "agent": agent}).allowed
    return time.perf_counter() - started, allowed


def naive(source: str, agents: list[dict[str, Any]], shared: dict[str, Any]) -> float:
    """The engine's program run with every variable converted on every call."""
    from chalicelib.policies import cel

    program = cel.engine().compile(source)
    sample = agents[:NAIVE_SAMPLE]
    started = time.perf_counter()
    for agent in sample:
        program.execute({**shared, "agent": agent})
    return (time.perf_counter() - started) / len(sample)


def costliest_admitted() -> tuple[int, int, float, str | None]:
    """One comprehension over a configuration of about 100,000 values."""
    from chalicelib.policies import cel, inputs

    items = ", ".join("{name: otlp, port: 4317}" for _ in range(33_000))
    config = inputs.config_input("application/yaml", f"items: [{items}]\n",
                                 configuration_id="big", version=1, name="Big",
                                 file_name="config.yaml")
    compiled = cel.compile_expression(
        "config.parsed.items.all(x, x.name != 'debug' && x.port > 0)", "publish")
    started = time.perf_counter()
    verdict = compiled.evaluate({"config": config})
    elapsed = time.perf_counter() - started
    return config["values"], cel._at(compiled._steps, config["values"]), elapsed, verdict.error


CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
{code}
t1 = time.perf_counter()
print(json.dumps({{"seconds": t1 - t0, "modules": len(sys.modules),
                   "typer": "typer" in sys.modules}}))
"""
IMPORTS = {
    "the app's way (chalicelib.policies.cel + engine())":
        "from chalicelib.policies import cel\ncel.engine()",
    "the extension alone (engine() after chalicelib.policies.cel is imported)": None,
    "import cel (the package, with its CLI)": "import cel",
}


def import_time(code: str) -> tuple[float, bool]:
    samples, typer = [], False
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), code=code)],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout
        found = json.loads(out.strip().splitlines()[-1])
        samples.append(found["seconds"])
        typer = found["typer"]
    return statistics.median(samples), typer


def extension_alone() -> float:
    code = ("from chalicelib.policies import cel\nimport time\nstarted = time.perf_counter()\n"
            "cel.engine()\nprint(time.perf_counter() - started)")
    samples = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                                    capture_output=True, text=True).stdout.strip())
               for _ in range(RUNS)]
    return statistics.median(samples)


def main() -> None:
    agents, shared, built = build_inputs()
    print(f"{len(agents):,} agents' inputs built in {built:.2f} s "
          f"({built / len(agents) * 1e6:.1f} µs each); configuration: "
          f"{shared['config']['values']} values, {shared['config']['size']:,} bytes")
    for name, source in POLICIES.items():
        cold, warm = compile_times(source)
        seconds, allowed = evaluate_all(source, agents, shared)
        per_naive = naive(source, agents, shared)
        print(f"\n{name}\n  {source}")
        print(f"  compile: {cold * 1e3:.2f} ms cold, {warm * 1e3:.2f} ms warm")
        print(f"  {len(agents):,} evaluations in {seconds:.2f} s: "
              f"{len(agents) / seconds:,.0f} evaluations/s, "
              f"{seconds / len(agents) * 1e6:.1f} µs each ({allowed:,} allowed)")
        print(f"  naive Program.execute(dict) on {NAIVE_SAMPLE:,} of them: "
              f"{per_naive * 1e6:.1f} µs each")
    values, steps, seconds, error = costliest_admitted()
    print(f"\ncostliest admitted: one comprehension over {values:,} values "
          f"({steps:,} estimated steps): {seconds * 1e3:.1f} ms, error={error}")
    print(f"\nimport time (median of {RUNS} fresh interpreters):")
    for label, code in IMPORTS.items():
        if code is None:
            print(f"  {label}: {extension_alone() * 1e3:.1f} ms")
            continue
        seconds, typer = import_time(code)
        print(f"  {label}: {seconds * 1e3:.1f} ms (typer loaded: {typer})")


if __name__ == "__main__":
    main()
