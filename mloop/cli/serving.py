"""``mloop serve``, ``mloop batch-predict`` and ``mloop build``: parse, call mloop.serving, render."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import orjson
import typer

from mloop.cli._app import app, console, error_console
from mloop.cli._listen import ALLOWED_HOSTS_HELP, answer_for, exposure_warning
from mloop.errors import InvalidInputError

ROWS_REJECTED = 3  # batch-predict's exit code when rows were skipped or quarantined
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
TRUSTED_HELP = "Trust the models' author: load pickled and TorchScript models and any type a file names."
TRUST_HELP = ("A type or function a model may use besides mloop's safe list, e.g. numpy.clip (repeatable); "
              "a refused model's error lists the names it needs.")


def _trust(trusted: bool, names: list[str] | None) -> bool | list[str]:
    """``load_model``'s ``trusted``: True for --trusted, else the --trust names (none: mloop's list only)."""
    return True if trusted else list(names or [])


def _settings(home: str | None, db_url: str | None, artifact_root: str | None):  # noqa: ANN202
    from mloop.config import Settings

    settings = Settings.load(home=home, db_url=db_url, artifact_root=artifact_root)
    if db_url or artifact_root:  # stores named on the command line win over a server in the environment
        settings = dataclasses.replace(settings, tracking_uri="")
    settings.export_stores()
    if settings.remote:  # models resolve through the server, in this process and in every worker
        os.environ["MLOOP_TRACKING_URI"] = settings.tracking_uri
    return settings


def _default_name(uri: str) -> str:
    m = re.match(r"^models:/([^/@]+)", uri) or re.match(r"^deployments:/[^/]+/([^/]+)$", uri)
    if m:
        return m.group(1)
    if uri.startswith("runs:/"):
        return "model"
    base = os.path.basename(uri.rstrip("/"))
    return base if _NAME.match(base) else "model"


def _ab(values: list[str] | None) -> tuple[tuple[str, float], ...]:
    out = []
    for value in values or []:
        uri, sep, weight = value.rpartition("=")
        try:
            out.append((uri, float(weight)))
        except ValueError:
            sep = ""
        if not sep or not uri:
            raise InvalidInputError(field="--ab", value=value, expected="URI=WEIGHT, e.g. models:/eta@challenger=0.1")
    return tuple(out)


@app.command()
def serve(
    model_uri: str = typer.Argument(..., help="Model to serve: models:/NAME@ALIAS, models:/NAME/VERSION, "
                                              "deployments:/ENV/NAME, runs:/RUN_ID/PATH or a folder."),
    more: list[str] = typer.Argument(None, help="More models to serve side by side, as NAME=URI."),
    name: str = typer.Option(None, "--name", help="Endpoint name of MODEL_URI (default: the model's name)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes."),
    ab: list[str] = typer.Option(None, "--ab", help="A/B arm URI=WEIGHT (repeatable); the primary gets the rest."),
    shadow: str = typer.Option(None, "--shadow", help="A version that gets a copy of every request, only logged."),
    sticky_field: str = typer.Option(None, "--sticky-field", help="Input field that keeps a caller on one A/B arm "
                                                                  "(the X-Mloop-Key header does too)."),
    max_batch_size: int = typer.Option(1, min=1, help="Micro-batch up to this many rows (1 = off)."),
    max_wait_ms: float = typer.Option(2.0, min=0, help="Longest wait for a micro-batch to fill."),
    cache_ttl: float = typer.Option(0.0, min=0, help="Cache predictions by input for this many seconds (0 = off)."),
    timeout_ms: float = typer.Option(0.0, min=0, help="Model call timeout; turns the circuit breaker on (0 = off)."),
    fallback: str = typer.Option(None, help="JSON answer per row when the model times out, fails or the breaker "
                                            "is open."),
    breaker_failures: int = typer.Option(5, min=1, help="Failures in a row that open the breaker."),
    breaker_reset: float = typer.Option(10.0, min=0, help="Seconds the breaker stays open before a trial call."),
    log: bool = typer.Option(True, "--log/--no-log", help="Write the prediction log (Parquet under the artifacts)."),
    reload_seconds: float = typer.Option(5.0, min=0, help="Poll the registry for moved aliases this often (0 = off)."),
    rollouts: bool = typer.Option(True, "--rollouts/--no-rollouts",
                                  help="Follow the registry's shadow and canary tags (automation's rollouts)."),
    trusted: bool = typer.Option(False, "--trusted", help=TRUSTED_HELP),
    trust: list[str] = typer.Option(None, "--trust", help=TRUST_HELP),
    home: str = typer.Option(None, "--home", help="mloop home folder."),
    db_url: str = typer.Option(None, "--db-url", help="Metadata database URL."),
    artifact_root: str = typer.Option(None, "--artifact-root", help="Artifact root folder or URL."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    feature_repo: str = typer.Option(None, "--feature-repo", envvar="MLOOP_FEATURE_REPO",
                                     help="Feature repository (features.py or a folder) for models that declare "
                                          "a feature_service: requests may then carry entity keys only."),
    allowed_hosts: str = typer.Option(None, "--allowed-hosts", help=ALLOWED_HOSTS_HELP),
) -> None:
    """Serve models over HTTP: /predict, /invocations (MLflow), /v2 (Open Inference Protocol), /metrics, /docs."""
    import uvicorn

    from mloop.serving import EndpointConfig, ServeConfig, create_serving_app

    settings = answer_for(_settings(home, db_url, artifact_root), host, allowed_hosts)
    try:
        fallback_value = orjson.loads(fallback) if fallback is not None else None
    except orjson.JSONDecodeError:
        raise InvalidInputError(field="--fallback", value=fallback,
                                expected="a JSON value, e.g. 0 or '\"unknown\"'") from None
    common = {"max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms, "cache_ttl": cache_ttl,
              "timeout_ms": timeout_ms, "fallback": fallback_value, "breaker_failures": breaker_failures,
              "breaker_reset": breaker_reset, "log": log, "rollouts": rollouts}
    endpoints = [EndpointConfig(name=name or _default_name(model_uri), uri=model_uri, ab=_ab(ab), shadow=shadow,
                                sticky_field=sticky_field, **common)]
    for item in more or []:
        other, sep, uri = item.partition("=")
        if not sep or not _NAME.match(other) or not uri:
            raise InvalidInputError(field="models", value=item, expected="NAME=URI, e.g. fraud=models:/fraud@champion")
        endpoints.append(EndpointConfig(name=other, uri=uri, **common))
    config = ServeConfig(endpoints=tuple(endpoints), reload_seconds=reload_seconds, trusted=_trust(trusted, trust))
    os.environ["MLOOP_SERVE_CONFIG"] = config.to_json()
    if feature_repo:
        os.environ["MLOOP_FEATURE_REPO"] = str(Path(feature_repo).absolute())  # read by every worker
    warning = exposure_warning(host, settings, "call the models")
    if warning:
        error_console.print(warning, highlight=False)
    options = {"host": host, "port": port, "log_level": log_level, "access_log": False,
               "timeout_graceful_shutdown": 10}
    if workers == 1:
        served = create_serving_app(config, settings)  # load now: a bad URI fails here with a clear message
        for endpoint in served.state.serving.endpoints.values():
            versions = ", ".join(f"{a.role} v{a.model.version}" for a in endpoint.arms)
            console.print(f"serving {endpoint.name} ({versions}) at http://{host}:{port}/predict/{endpoint.name}",
                          highlight=False)
        for where, why in served.state.serving.not_ready().items():  # live, but /health/ready answers 503
            error_console.print(f"not ready: {where} cannot answer its input example: {why}", highlight=False)
        console.print(f"API docs at http://{host}:{port}/docs, metrics at /metrics", highlight=False)
        uvicorn.run(served, **options)
    else:
        console.print(f"serving {', '.join(e.name for e in endpoints)} on http://{host}:{port} with {workers} workers",
                      highlight=False)
        uvicorn.run("mloop.serving.app:create_serving_app", factory=True, workers=workers, **options)


@app.command("batch-predict")
def batch_predict(
    model_uri: str = typer.Argument(..., help="Model URI (an alias is resolved once, at the first run)."),
    input: str = typer.Option(..., "--input", "-i", help="A .parquet file or folder, a .csv file, or a SQL query."),
    output: str = typer.Option(..., "--output", "-o", help="A Parquet output folder, or table:NAME."),
    input_format: str = typer.Option(None, help="parquet, csv or sql (default: from --input)."),
    output_format: str = typer.Option(None, help="parquet or table (default: from --output)."),
    db_url: str = typer.Option(None, "--source-db", help="Database URL for a SQL input or a table output."),
    chunk_rows: int = typer.Option(100_000, min=1, help="Rows per chunk (memory bound and resume unit)."),
    engine: str = typer.Option("local", help="local, or ray to spread chunks over Ray."),
    ray_address: str = typer.Option(None, help="Ray cluster address (default: start Ray locally)."),
    trusted: bool = typer.Option(False, "--trusted", help=TRUSTED_HELP),
    trust: list[str] = typer.Option(None, "--trust", help=TRUST_HELP),
    restart: bool = typer.Option(False, "--restart", help="Discard a previous run's output and score all anew."),
    predict_output: str = typer.Option(None, "--predict-output", help="label (a prediction column), proba (one "
                                       "proba_<class> column per class) or both (default: the model's default)."),
    on_invalid: str = typer.Option("fail", "--on-invalid", help="Rows that break the model's signature: fail (stop, "
                                   "naming them), skip (reasons to OUTPUT.rejects) or quarantine (rows and reasons "
                                   "to OUTPUT.quarantine). Exit code 3 when rows were skipped or quarantined."),
    log_predictions: bool = typer.Option(False, "--log-predictions", help="Also write the scored rows to the model's "
                                         "prediction log (role batch), where its monitors watch them."),
    home: str = typer.Option(None, "--home", help="mloop home folder."),
) -> None:
    """Score a file, folder or query in chunks; run it again after a crash to finish the missing chunks.

    Exit codes: 0 every row scored; 3 some rows were skipped or quarantined (--on-invalid); 2 bad input or
    options (with --on-invalid fail: invalid rows, named in the message); 1 any other failure (such as a previous
    run in OUTPUT with other options).
    """
    from mloop.serving import batch_predict as run

    settings = _settings(home, None, None)
    result = run(model_uri, input, output, input_format=input_format, output_format=output_format, db_url=db_url,
                 chunk_rows=chunk_rows, engine=engine, ray_address=ray_address, trusted=_trust(trusted, trust),
                 restart=restart, predict_output=predict_output, on_invalid=on_invalid,
                 log_predictions=log_predictions, settings=settings)
    console.print(f"scored {result.rows:,} rows in {result.chunks_scored} chunks "
                  f"({result.chunks_skipped} already done) with {result.model_uri} (version {result.model_version}) "
                  f"in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s) -> {result.output}",
                  highlight=False)
    if result.rows_rejected:
        verb = "skipped" if on_invalid == "skip" else "quarantined"
        error_console.print(f"{result.rows_rejected:,} invalid rows {verb}, with the reason per row -> "
                            f"{result.rejects}", highlight=False)
        raise typer.Exit(ROWS_REJECTED)


@app.command()
def build(
    model_uri: str = typer.Argument(..., help="Model URI to package."),
    output: str = typer.Option("mloop-build", "--output", "-o", help="Folder for the build context."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
    requirement: list[str] = typer.Option(None, "--requirement", "-r", help="Extra pip requirement (repeatable)."),
    home: str = typer.Option(None, "--home", help="mloop home folder."),
) -> None:
    """Write a container build context (Dockerfile, pinned requirements, entrypoint running mloop serve)."""
    from mloop.serving import build_context

    _settings(home, None, None)
    files = build_context(model_uri, output, overwrite=overwrite, extra_requirements=requirement)
    console.print(f"wrote {', '.join(files)} to {output}; build it with: docker build -t my-model {output}",
                  highlight=False)
