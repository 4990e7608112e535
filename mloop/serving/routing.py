"""One served name: its versions (A/B arms and a shadow), their guards, and hot reload.

``Endpoint.infer`` is the whole request path after parsing: pick an arm (sticky by
key), check the input against that version's signature, look in the cache, call the
model (inline, micro-batched, or in a thread with a timeout), answer the fallback when
the breaker says so, log the prediction, and hand a copy to the shadow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
import uuid
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mloop.registry.signature import FieldError
from mloop.serving._inputs import Columns
from mloop.serving.batching import MicroBatcher
from mloop.serving.config import EndpointConfig
from mloop.serving.metrics import Metrics
from mloop.serving.model import ServedModel, source_version
from mloop.serving.outputs import OUTPUTS, Outputs
from mloop.serving.predlog import PredictionLog
from mloop.serving.resilience import CircuitBreaker, PredictionCache

log = logging.getLogger("mloop.serving")

__all__ = ["Arm", "Endpoint", "InputRejected", "ModelUnavailable", "Result"]

RETIRE_GRACE = 30.0  # seconds a swapped-out arm's batchers live on for the requests that already picked it


class InputRejected(Exception):
    """The rows do not fit the model (HTTP 422); ``errors`` lists every field's problem."""

    def __init__(self, errors: list[FieldError], model: ServedModel | None) -> None:
        super().__init__(errors[0].message if errors else "invalid input")
        self.errors = errors
        self.model = model


class ModelUnavailable(Exception):
    """The model failed or is too slow and no fallback is configured (HTTP 503)."""


@dataclass(slots=True)
class Result:
    outputs: Outputs
    model: ServedModel
    request_id: str
    role: str
    fallback: bool = False
    cached: bool = False


class Arm:
    """One version slot: its source URI, the model loaded now, its batcher and its cache."""

    def __init__(self, role: str, source: str, model: ServedModel, weight: float, config: EndpointConfig,
                 metrics: Metrics, endpoint: str) -> None:
        self.role = role
        self.source = source
        self.model = model
        self.weight = weight
        self.cache = PredictionCache(config.cache_ttl, config.cache_entries) if config.cache_ttl > 0 else None
        self.failed_source: str | None = None  # a version that could not answer its example: not loaded again
        # one micro-batcher per output kind, so that rows batched together are answered alike
        self.batchers: dict[str, MicroBatcher] = {}
        if config.max_batch_size > 1:
            for output in OUTPUTS:
                self.batchers[output] = MicroBatcher(
                    lambda columns, output=output: self._predict_current(columns, output),
                    max_batch_size=config.max_batch_size, max_wait=config.max_wait_ms / 1000,
                    on_batch=lambda size: metrics.batch(endpoint, size))

    def _predict_current(self, columns: Columns, output: str = "label") -> tuple[Outputs, ServedModel]:
        model = self.model  # one read: a reload swaps the reference, never a half model
        return model.answer(columns, output), model


class Endpoint:
    """Routing, guards and logging for one served name."""

    def __init__(self, config: EndpointConfig, arms: list[Arm], shadow: Arm | None, metrics: Metrics,
                 log: PredictionLog | None) -> None:
        self.config = config
        self.name = config.name
        self.arms = arms
        self.shadow = shadow
        self.metrics = metrics
        self.log = log if config.log else None
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset) if config.timeout_ms > 0 \
            else None
        self._timeout = config.timeout_ms / 1000
        self._pool = ThreadPoolExecutor(4, thread_name_prefix=f"mloop-{config.name}") if self.breaker else None
        self._shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="mloop-shadow") if shadow else None
        self._shadow_pending = 0
        self.comparison = ShadowComparison()
        from mloop.serving.rollout import Rollout

        self.rollout = Rollout()  # what the registry's rollout tags put here (mloop.serving.rollout)
        self._cumulative = _cumulative(arms)
        for arm in [*arms, *([shadow] if shadow else [])]:
            metrics.set_version(self.name, arm.role, arm.model.version)

    def set_arms(self, arms: list[Arm]) -> None:
        """Route to ``arms`` from now on (the first is the primary); requests in flight keep the arm they
        picked. One reference is swapped, so a request never sees half of the change."""
        dropped = [arm for arm in self.arms if arm not in arms]
        self._cumulative = _cumulative(arms)
        self.arms = arms
        for arm in arms[1:]:
            self.metrics.set_version(self.name, arm.role, arm.model.version)
        for arm in dropped:  # a canary that ended: its batchers' threads go once its last requests are answered
            for batcher in arm.batchers.values():
                batcher.retire(RETIRE_GRACE)

    def set_shadow(self, shadow: Arm | None) -> None:
        """Copy the traffic to ``shadow`` from now on (None: to no one), with a fresh comparison."""
        if shadow is not None and self._shadow_pool is None:
            self._shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="mloop-shadow")
        self.comparison = ShadowComparison()
        self.shadow = shadow
        if shadow is not None:
            self.metrics.set_version(self.name, shadow.role, shadow.model.version)

    @property
    def primary(self) -> Arm:
        return self.arms[0]

    def choose(self, key: str | None) -> Arm:
        """The arm for a request: by weight, the same one for the same key."""
        cumulative = self._cumulative  # one read: a rollout may swap the arms meanwhile
        if len(cumulative) == 1:
            return cumulative[0][1]
        point = (zlib.crc32(key.encode()) / 4294967296.0) if key else random.random()
        for bound, arm in cumulative:
            if point < bound:
                return arm
        return cumulative[-1][1]

    def sticky_key(self, columns: Columns, header: str | None) -> str | None:
        if header:
            return header
        field = self.config.sticky_field
        if field and columns.get(field):
            return str(columns[field][0])
        return None

    # ------------------------------------------------------------------ the request path
    async def infer(self, columns: Columns, n: int, key: str | None = None, output: str | None = None) -> Result:
        """Answer ``n`` rows: labels, probabilities or both (``output``, else the chosen version's default)."""
        started = time.perf_counter()
        arm = self.choose(key)
        model = arm.model
        chosen = model.output_for(output)  # PayloadError (400) when probabilities are asked of a regressor
        checked, errors = model.prepare(columns, n)
        if model.unreported_warnings:  # training-schema "warn" violations: counted, never rejected
            self.metrics.event(self.name, "schema_warning", model.unreported_warnings)
            model.unreported_warnings = 0
        if errors:
            raise InputRejected(errors, model)
        request_id = os.urandom(10).hex()
        cache_key = None
        if arm.cache is not None:
            cache_key = arm.cache.key(f"{model.version}:{chosen}", checked)
            hit = arm.cache.get(cache_key)
            if hit is not None:
                self.metrics.event(self.name, "cache_hit")
                return Result(hit, model, request_id, arm.role, cached=True)
            self.metrics.event(self.name, "cache_miss")
        try:
            outputs, model, fallback = await self._call(arm, model, checked, n, chosen)
        except ModelUnavailable as exc:
            exc.role, exc.version = arm.role, model.version  # the error log counts it against this arm
            raise
        if cache_key is not None and not fallback:
            arm.cache.put(cache_key, outputs)  # type: ignore[union-attr, arg-type]
        elapsed = time.perf_counter() - started
        if self.log is not None:
            self._record(model.version, arm.role, request_id, checked, outputs, elapsed, n)
        shadow = self.shadow
        if shadow is not None:
            self._to_shadow(shadow, columns, n, request_id, outputs, elapsed, chosen)
        return Result(outputs, model, request_id, arm.role, fallback=fallback)

    def _record(self, version: str, role: str, request_id: str, columns: Columns, outputs: Outputs, seconds: float,
                n: int) -> None:
        assert self.log is not None
        self.log.record(self.name, version, role, request_id, columns, outputs.label_rows(), seconds, n,
                        proba=outputs.proba, classes=outputs.classes)

    async def _call(self, arm: Arm, model: ServedModel, columns: Columns, n: int, output: str = "label",
                    ) -> tuple[Outputs, ServedModel, bool]:
        breaker = self.breaker
        if breaker is not None and not breaker.allow():
            return self._fallback(n, model, "breaker_open")
        try:
            batcher = arm.batchers.get(output)
            if batcher is not None:
                call = batcher.submit(columns, n)
                predictions, model = await (asyncio.wait_for(call, self._timeout) if breaker else call)
            elif breaker is not None:
                loop = asyncio.get_running_loop()
                fut = loop.run_in_executor(self._pool, model.answer, columns, output)
                predictions = await asyncio.wait_for(fut, self._timeout)
            else:
                self.metrics.batch(self.name, n)
                predictions = model.answer(columns, output)
        except TimeoutError:
            if breaker is None:
                raise
            breaker.failure()
            return self._fallback(n, model, "timeout")
        except (ValueError, TypeError, ArithmeticError) as exc:  # the model refused values the signature let through
            raise InputRejected([FieldError(field="data", expected="values the model accepts", value=None,
                                            row=None, message=f"the model rejected the input: {exc}")],
                                model) from exc
        except Exception as exc:
            if breaker is None:
                # its text may hold paths, keys or values: it goes to the log, the client gets an id to find it
                error_id = uuid.uuid4().hex[:12]
                log.error("error %s: model %s v%s failed", error_id, model.name, model.version, exc_info=exc)
                raise ModelUnavailable(f"model {model.name} v{model.version} failed ({type(exc).__name__}); the "
                                       f"server log has the details under error id {error_id}") from exc
            breaker.failure()
            return self._fallback(n, model, "error")
        if breaker is not None:
            breaker.success()
        return predictions, model, False

    def _fallback(self, n: int, model: ServedModel, why: str) -> tuple[Outputs, ServedModel, bool]:
        self.metrics.event(self.name, f"fallback_{why}")
        if self.config.fallback is None:
            raise ModelUnavailable(f"model {model.name} v{model.version} is unavailable ({why}) "
                                   "and no fallback is configured")
        return Outputs([self.config.fallback] * n), model, True

    # ------------------------------------------------------------------ shadow
    def _to_shadow(self, shadow: Arm, columns: Columns, n: int, request_id: str, primary: Outputs, seconds: float,
                   output: str = "label") -> None:
        if self._shadow_pending >= 64:  # never let the shadow build a backlog
            self.metrics.event(self.name, "shadow_skipped")
            return
        self._shadow_pending += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._shadow_pool, self._run_shadow, shadow, columns, n, request_id, primary,
                                      seconds, output)
        future.add_done_callback(self._shadow_done)

    def _shadow_done(self, future: Any) -> None:
        self._shadow_pending -= 1

    def _run_shadow(self, shadow: Arm, columns: Columns, n: int, request_id: str, primary: Outputs, seconds: float,
                    output: str = "label") -> None:
        model = shadow.model
        started = time.perf_counter()
        try:
            checked, errors = model.prepare(columns, n)
            if errors:
                self.comparison.failed += 1
                return
            # the shadow answers what the primary answered, when it can (a regressor shadow answers labels)
            answer = model.answer(checked, output if model.proba_refusal is None else "label")
        except Exception:
            self.comparison.failed += 1
            return
        elapsed = time.perf_counter() - started
        self.metrics.event(self.name, "shadow_calls")
        self.comparison.add(primary.label_rows(), answer.label_rows(), seconds, elapsed)
        if self.log is not None:
            self._record(model.version, "shadow", request_id, checked, answer, elapsed, n)

    # ------------------------------------------------------------------ reload
    def reload_if_moved(self, client: Any, trusted: bool | tuple[str, ...]) -> list[str]:
        """Load and swap in every arm whose alias or environment moved; returns what changed."""
        changed = []
        for arm in [*self.arms, *([self.shadow] if self.shadow else [])]:
            if not arm.model.moves:
                continue
            now = source_version(arm.source, client)
            if now == arm.model.concrete or now == arm.failed_source:
                if arm.model.not_ready is not None:  # a check that failed for a passing reason may pass now
                    arm.model.not_ready = arm.model.self_check()
                continue
            fresh = ServedModel.load(arm.source, client=client, trusted=trusted, concrete=now)
            fresh.warm_up()
            if fresh.not_ready is not None:  # the version in service goes on answering
                arm.failed_source = now
                self.metrics.event(self.name, "reload_failed")
                changed.append(f"{self.name} {arm.role}: v{fresh.version} not swapped in, it cannot answer: "
                               f"{fresh.not_ready}; v{arm.model.version} keeps serving")
                continue
            old = arm.model
            arm.model = fresh  # the swap: requests already running keep the old object
            self.metrics.set_version(self.name, arm.role, fresh.version)
            self.metrics.event(self.name, "reload")
            changed.append(f"{self.name} {arm.role}: v{old.version} -> v{fresh.version}")
        return changed

    async def close(self) -> None:
        for arm in self.arms:
            for batcher in arm.batchers.values():
                await batcher.close()
        if self._shadow_pool is not None:
            self._shadow_pool.shutdown(wait=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name,
                "arms": [{"role": a.role, "source": a.source, "version": a.model.version, "weight": a.weight}
                         for a in self.arms],
                "shadow": None if self.shadow is None else {"source": self.shadow.source,
                                                             "version": self.shadow.model.version},
                "batching": {"max_batch_size": self.config.max_batch_size, "max_wait_ms": self.config.max_wait_ms},
                "cache": None if not self.arms[0].cache else {"ttl": self.config.cache_ttl,
                                                                 "hits": sum(a.cache.hits for a in self.arms
                                                                             if a.cache),
                                                                 "misses": sum(a.cache.misses for a in self.arms
                                                                               if a.cache)},
                "breaker": None if self.breaker is None else self.breaker.state()}


def _cumulative(arms: list[Arm]) -> list[tuple[float, Arm]]:
    """Each arm with the upper bound of its share of [0, 1)."""
    bounds, total = [], 0.0
    for arm in arms:
        total += arm.weight
        bounds.append((total, arm))
    return bounds


class ShadowComparison:
    """How the shadow's answers compare with the primary's: agreement and latency."""

    def __init__(self, window: int = 10_000) -> None:
        self.rows = 0
        self.agree = 0
        self.abs_diff = 0.0
        self.numeric = 0
        self.failed = 0
        self.primary_ms: deque[float] = deque(maxlen=window)
        self.shadow_ms: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, primary: list[Any], shadow: list[Any], primary_s: float, shadow_s: float) -> None:
        with self._lock:
            for a, b in zip(primary, shadow, strict=False):
                self.rows += 1
                if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
                    self.numeric += 1
                    self.abs_diff += abs(a - b)
                    self.agree += abs(a - b) <= 1e-6 + 0.01 * abs(a)
                else:
                    self.agree += a == b
            self.primary_ms.append(primary_s * 1000)
            self.shadow_ms.append(shadow_s * 1000)

    def summary(self) -> dict[str, Any]:
        def p(values: deque[float], q: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

        with self._lock:
            return {"rows": self.rows, "agreement": (self.agree / self.rows) if self.rows else None,
                    "mean_abs_diff": (self.abs_diff / self.numeric) if self.numeric else None,
                    "failed": self.failed,
                    "primary_latency_ms": {"p50": p(self.primary_ms, 0.5), "p99": p(self.primary_ms, 0.99)},
                    "shadow_latency_ms": {"p50": p(self.shadow_ms, 0.5), "p99": p(self.shadow_ms, 0.99)}}
