"""Rate limits and throttling retries per (account, region, service).

AWS throttles per account and region (each service keeps its own request-rate buckets), while a scan
shares one botocore client per (service, region) across every account (collect/clients.py). So the
client's own adaptive limiter would be shared too: one throttled account would slow that service in
every other account. Here each key (account, region, service) gets botocore's own machinery — an
adaptive `ClientRateLimiter` (CUBIC send rate, `TokenBucket`), a standard-mode `RetryHandler` with its
retry quota, and standard mode's exponential backoff with jitter for throttling errors — and a router
registered on each shared client dispatches every request to the key of the calling thread's account.

A configured ceiling (`RateLimits`) is a second, fixed-rate `TokenBucket` in front of the adaptive one.
Throttling errors have their own attempt budget (`throttle_attempts`): sustained throttling is slowed
down and retried, not turned into evidence gaps; other errors keep AUDITBOOK_MAX_ATTEMPTS."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Callable, Optional

import botocore.session
from botocore.retries import adaptive, bucket, quota, standard, throttling
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)

from auditbook.errors import UserError, field_path, first_error, name_of
from auditbook.yamlfile import load_yaml

MAX_RATE = 1000.0  # requests per second per key: far above any AWS API's per-account rate
MIN_RATE = 0.5  # botocore's TokenBucket never goes slower (TokenBucket._MIN_RATE)
DEFAULT_THROTTLE_ATTEMPTS = 15  # 30 % of responses throttled: a call is lost with p = 0.3**15 ≈ 1.4e-8
MAX_THROTTLE_ATTEMPTS = 50  # backoff is capped at 20 s a retry: 50 attempts ≈ 15 minutes at worst
UNATTRIBUTED = "unattributed"  # a call made through a client bound without an account

Rate = Annotated[StrictFloat, Field(ge=MIN_RATE, le=MAX_RATE, allow_inf_nan=False)]
AccountId = Annotated[str, Field(pattern=r"^[0-9]{12}$")]


class RateLimits(BaseModel):
    """Request-rate ceilings per (account, region, service), in requests per second. A key's ceiling
    is the lower of its account's and its service's override where either is set, else `max_rate`;
    None: no fixed ceiling (the adaptive limiter alone, which slows a key down once AWS throttles it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rate: Optional[Rate] = None
    services: dict[str, Rate] = Field(default_factory=dict, max_length=500)
    accounts: dict[AccountId, Rate] = Field(default_factory=dict, max_length=100_000)
    throttle_attempts: StrictInt = Field(DEFAULT_THROTTLE_ATTEMPTS, ge=1, le=MAX_THROTTLE_ATTEMPTS)

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: dict[str, float]) -> dict[str, float]:
        known = set(botocore.session.get_session().get_available_services())
        unknown = sorted(name for name in value if name not in known)
        if unknown:
            raise ValueError(f"{name_of(unknown[0])} is not an AWS service name botocore knows (e.g. ec2, s3, iam)")
        return value

    def ceiling(self, account: str, service: str) -> Optional[float]:
        overrides = [r for r in (self.accounts.get(account), self.services.get(service)) if r is not None]
        return min(overrides) if overrides else self.max_rate


def load_rate_limits(path: Optional[Path]) -> RateLimits:
    """The rate limits of a YAML file (None: the defaults); a bad file is a one-line UserError naming
    the file, the field and the value."""
    if path is None:
        return RateLimits()
    raw = load_yaml(path)
    try:
        return RateLimits.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        loc, message = first_error(exc)
        if loc[:1] == ("accounts",) and "[key]" in loc and "valid string" in message:
            message += " (write account ids in quotes, '123456789012': YAML reads a bare 0123… as an octal number)"
        raise UserError(f"{path}: {field_path(loc) or '(document)'}: {message}")


class _Shared:
    """What every key's handlers share: stateless botocore policy objects and the clock."""

    def __init__(self, limits: RateLimits, max_attempts: int):
        self.limits = limits
        self.max_attempts = max_attempts
        self.clock = bucket.Clock()
        self.lock = threading.Lock()  # the keys' counters, and building a key's parts
        self.adapter = standard.RetryEventAdapter()
        self.detector = standard.ThrottlingErrorDetector(self.adapter)
        self._policies: dict[str, standard.RetryPolicy] = {}

    def policy(self, service_event: str) -> standard.RetryPolicy:
        """Standard mode's policy for a service (its backoff scale depends on the service)."""
        found = self._policies.get(service_event)
        if found is None:
            found = self._policies.setdefault(service_event, standard.RetryPolicy(
                retry_checker=standard.StandardRetryConditions(max_attempts=self.max_attempts),
                retry_backoff=standard.ExponentialBackoff(service_name=service_event,
                                                          throttling_detector=self.detector)))
        return found


class KeyLimiter:
    """One (account, region, service): botocore's adaptive limiter, an optional fixed ceiling, standard
    mode's retry handler and quota, and counters (requests sent, throttling responses, seconds spent
    waiting for the limiter). An organisation scan has tens of thousands of keys, so what a key does
    not need yet is built when it does: the adaptive limiter when AWS first throttles the key (until
    then botocore's only measures the send rate, which `_clocker` does), the retry handler on its
    first retryable error (until then its quota would stay full)."""

    __slots__ = ("_shared", "_service_event", "_clocker", "_adaptive", "_adaptive_bucket", "_ceiling",
                 "_retry", "_quota", "calls", "throttled", "waited_seconds")

    def __init__(self, shared: _Shared, service_event: str, ceiling: Optional[float]):
        self._shared, self._service_event = shared, service_event
        self._clocker = adaptive.RateClocker(shared.clock)
        self._adaptive: Optional[adaptive.ClientRateLimiter] = None
        self._adaptive_bucket: Optional[bucket.TokenBucket] = None
        self._ceiling = bucket.TokenBucket(max_rate=ceiling, clock=shared.clock) if ceiling is not None else None
        self._retry: Optional[standard.RetryHandler] = None
        self._quota: Optional[standard.RetryQuotaChecker] = None
        self.calls, self.throttled, self.waited_seconds = 0, 0, 0.0

    def before_send(self, request=None, **_) -> None:
        """Wait for the key's ceiling and adaptive limiter (botocore's `before-send`)."""
        start = time.monotonic()
        if self._ceiling is not None:
            self._ceiling.acquire()
        if self._adaptive is not None:
            self._adaptive.on_sending_request(request)
        waited = time.monotonic() - start
        with self._shared.lock:
            self.calls += 1
            self.waited_seconds += waited

    def needs_retry(self, **kwargs) -> Optional[float]:
        """Adapt the send rate to the response; the delay before a retry, or None (`needs-retry`).
        A throttling error is retried with backoff up to `throttle_attempts`; any other error as
        standard mode does (AUDITBOOK_MAX_ATTEMPTS, retry quota)."""
        shared = self._shared
        context = shared.adapter.create_retry_context(**kwargs)
        throttled = shared.detector.is_throttling_error_from_context(context)
        if throttled and self._adaptive is None:
            self._engage()
        if self._adaptive is not None:
            self._adaptive.on_receiving_response(**kwargs)
        else:
            self._clocker.record()  # what botocore's limiter does with a response before it is engaged
        policy = shared.policy(self._service_event)
        if not throttled:
            if not policy.should_retry(context):
                shared.adapter.adapt_retry_response_from_context(context)
                return None
            return self._retry_handler().needs_retry(**kwargs)
        with shared.lock:
            self.throttled += 1
        if context.attempt_number >= shared.limits.throttle_attempts:
            return None
        return policy.compute_retry_delay(context)  # throttling: standard mode's 1 s base, with jitter

    def _engage(self) -> None:
        """botocore's adaptive limiter for this key, from the send rate measured so far."""
        clock = self._shared.clock
        with self._shared.lock:
            if self._adaptive is None:
                self._adaptive_bucket = bucket.TokenBucket(max_rate=1, clock=clock)
                self._adaptive = adaptive.ClientRateLimiter(
                    rate_adjustor=throttling.CubicCalculator(starting_max_rate=0, start_time=clock.current_time()),
                    rate_clocker=self._clocker, token_bucket=self._adaptive_bucket,
                    throttling_detector=self._shared.detector, clock=clock)

    def _retry_handler(self) -> standard.RetryHandler:
        with self._shared.lock:
            if self._retry is None:
                self._quota = standard.RetryQuotaChecker(quota.RetryQuota(), self._shared.detector)
                self._retry = standard.RetryHandler(
                    retry_policy=self._shared.policy(self._service_event), retry_event_adapter=self._shared.adapter,
                    retry_quota=self._quota, service_name=self._service_event)
            return self._retry

    def after_call(self, context, http_response=None, **_) -> None:
        """A successful call gives back the retry quota its retries took (standard mode's `after-call`)."""
        if self._quota is not None:
            self._quota.release_retry_quota(context, http_response)

    @property
    def send_rate(self) -> Optional[float]:
        """The adaptive limiter's current rate (requests/s), or None while AWS has not throttled the key."""
        return self._adaptive_bucket.max_rate if self._adaptive_bucket is not None else None

    def stats(self) -> dict:
        with self._shared.lock:
            return {"calls": self.calls, "throttled": self.throttled,
                    "waited_seconds": round(self.waited_seconds, 6)}


class Limiters:
    """The KeyLimiter of every (account, region, service) a scan has called, created on first use;
    `attach` routes a shared client's requests to the key of the calling thread's account."""

    def __init__(self, limits: Optional[RateLimits], max_attempts: int,
                 account_of: Callable[[], Optional[str]]):
        self.limits = limits or RateLimits()
        self._shared = _Shared(self.limits, max_attempts)
        self._account_of = account_of
        self._keys: dict[tuple[str, str, str], KeyLimiter] = {}
        self._of_account: dict[str, list[tuple[str, str, str]]] = {}  # stats(account) without a walk over all
        self._lock = threading.Lock()

    def key(self, account: str, region: str, service: str, service_event: Optional[str] = None) -> KeyLimiter:
        found = self._keys.get((account, region, service))
        if found is None:
            with self._lock:
                found = self._keys.get((account, region, service))
                if found is None:
                    found = self._keys[(account, region, service)] = KeyLimiter(
                        self._shared, service_event or service, self.limits.ceiling(account, service))
                    self._of_account.setdefault(account, []).append((account, region, service))
        return found

    def attach(self, client) -> None:
        """Route the client's limiter and retry events to the calling thread's key. Replaces the
        per-client retry handler of botocore's standard mode (its quota would be shared by accounts)."""
        region, service = client.meta.region_name, client.meta.service_model.service_name
        event = client.meta.service_model.service_id.hyphenize()
        current = lambda: self.key(self._account_of() or UNATTRIBUTED, region, service, event)  # noqa: E731
        events = client.meta.events
        events.unregister(f"needs-retry.{event}", unique_id=f"retry-config-{event}")
        # first: before botocore's (and moto's in-process) before-send handler, which answers the request
        events.register_first(f"before-send.{event}", lambda **kw: current().before_send(**kw))
        events.register(f"needs-retry.{event}", lambda **kw: current().needs_retry(**kw),
                        unique_id=f"retry-config-{event}")
        events.register(f"after-call.{event}", lambda **kw: current().after_call(**kw))

    def stats(self, account: Optional[str] = None) -> dict[str, dict]:
        """{"account/region/service": {"calls", "throttled", "waited_seconds"}}: plain values (only the
        keys of `account`, if given: a worker process holds the keys of every account it has scanned)."""
        with self._lock:
            keys = list(self._keys.items()) if account is None else [
                (k, self._keys[k]) for k in self._of_account.get(account, [])]
        return {"/".join(key): limiter.stats() for key, limiter in sorted(keys)}

    def send_rates(self) -> dict[str, Optional[float]]:
        """The adaptive send rate of every key AWS throttled (requests/s), None for the others."""
        with self._lock:
            keys = list(self._keys.items())
        return {"/".join(key): limiter.send_rate for key, limiter in sorted(keys)}


def throttled_keys(after: dict[str, dict], before: Optional[dict[str, dict]] = None) -> dict[str, dict]:
    """The keys AWS throttled between two `Limiters.stats()` readings (`before` None: since the start),
    with their calls, throttling responses and seconds waited over that interval."""
    before = before or {}
    out = {}
    for key, now in after.items():
        was = before.get(key, {})
        delta = {name: round(now[name] - was.get(name, 0), 6) for name in ("calls", "throttled", "waited_seconds")}
        if delta["throttled"] > 0:
            out[key] = delta
    return out
