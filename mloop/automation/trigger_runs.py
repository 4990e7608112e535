"""The triggers that read what tracking recorded about training: a tracked metric of the latest finished run
(or of the champion's own training run), and the code that trained the champion (the flow file's digest a flow
run records as ``mloop.flow.digest``, or the git commit a run records as ``mloop.git.commit``) against the code
there is now.
"""

from __future__ import annotations

from typing import Any

from mloop.automation.triggers import Candidate, beyond_bounds
from mloop.config import Settings
from mloop.errors import NotFoundError

__all__ = ["code_change", "file_digest", "run_metric_drop"]

FLOW_DIGEST_TAG, GIT_COMMIT_TAG = "mloop.flow.digest", "mloop.git.commit"


def _alias_version(rule: Any, trig: dict[str, Any], settings: Settings) -> Any:
    """The version at the trigger's alias (default champion), or None when the alias is not set yet."""
    from mloop.registry import registry_for

    try:
        return registry_for(settings).get_alias(rule.model, trig.get("alias", "champion"))
    except NotFoundError:
        return None


def _latest_finished_run(experiment: str, settings: Settings) -> Any:
    """The run of ``experiment`` that finished last, or None (no such experiment yet, or no finished run)."""
    from mloop.registry import registry_for

    runs = registry_for(settings).runs
    found = runs.get_experiment_by_name(experiment)
    if found is None:
        return None
    frame = runs.search_runs([found.experiment_id], "status = 'finished'", ["end_time DESC"], 1)
    return None if frame.empty else runs.get_run(str(frame["run_id"].iloc[0]))


def run_metric_drop(rule: Any, trig: dict[str, Any], settings: Settings) -> list[Candidate]:
    """``run_metric`` of the latest finished run of ``experiment`` (or, without one, of the champion's training
    run) when it is past ``below``/``above``; keyed by the run, so each run fires at most once."""
    from mloop.registry import registry_for

    metric = trig["run_metric"]
    champion = _alias_version(rule, trig, settings)
    if "experiment" in trig:
        run = _latest_finished_run(trig["experiment"], settings)
    else:
        run = registry_for(settings).runs.get_run(champion.run_id) if champion and champion.run_id else None
    if run is None or metric not in run.metrics:
        return []
    value = float(run.metrics[metric])
    if not beyond_bounds(trig, value):
        return []
    payload: dict[str, Any] = {f"run.{metric}": value, "run.id": run.run_id}
    if champion is not None and metric in champion.metrics:  # what the serving model scored when it was trained
        payload[f"train.{metric}"] = float(champion.metrics[metric])
    return [Candidate(f"metric_drop:{rule.name}:run:{run.run_id}", payload)]


def file_digest(path: str) -> str:
    """sha256 of a flow's code file (the digest a flow run records)."""
    from pathlib import Path

    from mloop.flows._code import file_digest as digest_of

    if not Path(path).is_file():
        raise NotFoundError(f"code_change trigger: no file at {path!r}.", field="trigger.file")
    return digest_of(path)


def _trained_with(champion: Any, tag: str, settings: Settings) -> str | None:
    """The value of ``tag`` on the champion's training run or a run it is nested in (its flow run)."""
    from mloop.registry import registry_for
    from mloop.registry.lineage import training_tag

    return None if champion is None else training_tag(registry_for(settings), champion, tag)


def code_change(rule: Any, trig: dict[str, Any], last: dict[str, Any], settings: Settings) -> list[Candidate]:
    """The flow file's digest (or the repository's HEAD) against the one that trained the champion; without a
    record of it (a champion trained outside a flow), against the last event's, so a first tick fires once."""
    if "git" in trig:
        return _git_change(rule, trig, last, settings)
    digest = file_digest(trig["file"])
    before = _trained_with(_alias_version(rule, trig, settings), FLOW_DIGEST_TAG, settings) or last.get("code.digest")
    if digest == before:
        return []
    return [Candidate(f"code_change:{rule.name}:{digest}", {"code.digest": digest, "code.before": before})]


def _git_change(rule: Any, trig: dict[str, Any], last: dict[str, Any], settings: Settings) -> list[Candidate]:
    from mloop.tracking.env import git_state

    state = git_state.__wrapped__(str(trig["git"]))  # uncached: a long-running runtime must see new commits
    if state is None:
        raise NotFoundError(f"code_change trigger: {trig['git']!r} is not a git repository.", field="trigger.git")
    before = _trained_with(_alias_version(rule, trig, settings), GIT_COMMIT_TAG, settings) or last.get("code.commit")
    if state[0] == before:
        return []
    return [Candidate(f"code_change:{rule.name}:{state[0]}", {"code.commit": state[0], "code.dirty": state[1],
                                                               "code.before": before})]
