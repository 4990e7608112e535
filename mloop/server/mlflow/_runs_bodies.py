"""The request bodies of MLflow's tracking API, bounded as MLflow bounds them (or tighter, where mloop is).

The mlflow client sends each run id twice (``run_id`` and the older ``run_uuid``); either is taken. Values the
client sends as protobuf JSON (int64 as strings, NaN as ``"NaN"``) are accepted in that form.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from mloop.errors import InvalidInputError
from mloop.server.api._schema import Text
from mloop.server.mlflow._runs_inputs import DatasetInputIn
from mloop.tracking._values import MAX_PARAM_CHARS, MAX_TAG_CHARS

# MLflow's limits on one log-batch request
MAX_BATCH_METRICS, MAX_BATCH_PARAMS_TAGS, MAX_BATCH_ENTITIES = 1000, 100, 1000
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Id = Text(64)
KeyText = Annotated[str, Field(max_length=250)]  # checked as a key by check_key, which names the field
TagValue = Annotated[Text(MAX_TAG_CHARS), Field(max_length=MAX_TAG_CHARS)]
MetricValue = float | Annotated[str, Field(pattern="^(NaN|Infinity|-Infinity|nan|inf|-inf)$")]


class Tag(BaseModel):
    key: KeyText
    value: TagValue = ""


class RunRef(BaseModel):
    run_id: Annotated[Id, Field(max_length=64)] | None = None
    run_uuid: Annotated[Id, Field(max_length=64)] | None = None

    @property
    def run(self) -> str:
        found = self.run_id or self.run_uuid
        if not found:
            raise InvalidInputError(field="run_id", value=None, expected="the id of a run (run_id)")
        return found


class ExperimentRef(BaseModel):
    experiment_id: Annotated[Id, Field(min_length=1, max_length=64)]


class CreateExperimentIn(BaseModel):
    name: Annotated[Text(256), Field(min_length=1, max_length=256)]
    artifact_location: Text(2000) | None = None  # the server keeps artifacts where it is configured to
    tags: list[Tag] = Field(default=[], max_length=100)


class UpdateExperimentIn(ExperimentRef):
    new_name: Annotated[Text(256), Field(min_length=1, max_length=256)]


class ExperimentTagIn(ExperimentRef):
    key: KeyText
    value: TagValue = ""


class SearchExperimentsIn(BaseModel):
    max_results: int | None = None
    page_token: Annotated[str, Field(max_length=1000)] | None = None
    filter: Annotated[str, Field(max_length=10_000)] = ""
    order_by: list[Annotated[str, Field(max_length=300)]] = Field(default=[], max_length=20)
    view_type: str | int | None = None


class CreateRunIn(BaseModel):
    experiment_id: Annotated[Id, Field(max_length=64)] = "0"
    user_id: Annotated[Text(256), Field(max_length=256)] = ""
    start_time: Int64 | None = None
    tags: list[Tag] = Field(default=[], max_length=1000)
    run_name: Annotated[Text(256), Field(max_length=256)] | None = None


class UpdateRunIn(RunRef):
    status: Annotated[str, Field(max_length=16)] | None = None
    end_time: Int64 | None = None
    run_name: Annotated[Text(256), Field(max_length=256)] | None = None


class SearchRunsIn(BaseModel):
    experiment_ids: list[Annotated[str, Field(max_length=64)]] = Field(default=[], max_length=1000)
    filter: Annotated[str, Field(max_length=10_000)] = ""
    run_view_type: str | int | None = None
    max_results: int | None = None
    order_by: list[Annotated[str, Field(max_length=300)]] = Field(default=[], max_length=20)
    page_token: Annotated[str, Field(max_length=1000)] | None = None


class TagIn(RunRef):
    key: KeyText
    value: TagValue = ""


class DeleteTagIn(RunRef):
    key: KeyText


class MetricIn(BaseModel):
    key: KeyText
    value: MetricValue
    timestamp: Int64
    step: Int64 = 0


class LogMetricIn(RunRef, MetricIn):
    pass


class ParamIn(BaseModel):
    key: KeyText
    value: Annotated[Text(MAX_PARAM_CHARS), Field(max_length=MAX_PARAM_CHARS)] = ""


class LogParamIn(RunRef, ParamIn):
    pass


class LogBatchIn(RunRef):
    metrics: list[MetricIn] = Field(default=[], max_length=MAX_BATCH_METRICS)
    params: list[ParamIn] = Field(default=[], max_length=MAX_BATCH_PARAMS_TAGS)
    tags: list[Tag] = Field(default=[], max_length=MAX_BATCH_PARAMS_TAGS)

    def check_total(self) -> None:
        total = len(self.metrics) + len(self.params) + len(self.tags)
        if total > MAX_BATCH_ENTITIES:
            raise InvalidInputError(field="log_batch", value=total,
                                    expected=f"at most {MAX_BATCH_ENTITIES} metrics, params and tags together")


class LogInputsIn(RunRef):
    datasets: list[DatasetInputIn] = Field(default=[], max_length=1000)
    # MLflow 3's logged-model inputs belong to the logged-model API; they are accepted and not stored here
    models: list[dict[str, Text(64)]] = Field(default=[], max_length=1000)
