"""The cache store.

Rules (see docs/cache.md):

* Values are bytes (usually a JSON document) in one Redis string with a small header recording the
  generations they were computed under and their soft expiry; keys carry the configured prefix.
* Generations: each value names the namespaces it depends on (``articles``, ``ads``,
  ``article:<slug>``...). A publish bumps them **after commit**, so the next read recomputes.
  A value computed while one of its generations moved is not stored (checked atomically in Lua).
  Each generation also remembers the publish's causal token, and a refill reads with it, so it
  never reads a replica older than the publish.
* Stampedes: one recompute per key at a time (``SET NX PX`` lock). Past the soft TTL the others get
  the stale value meanwhile; for a missing or invalidated value they wait briefly for the winner.
* Redis down or slow: short socket timeouts and a circuit breaker (a refusal opens it, timeouts only
  when they come in a row: every successful round trip resets the count); the value is computed
  from the database and served (``bypass``). Generation bumps that failed are retried once Redis
  answers.
* Read-your-writes across processes: every bump gets a sequence number from Redis, which the
  request that published carries on (``Causality.cache_seq``, in its session and causal token). A
  process whose local tier has not yet processed that bump's invalidation skips its local tier
  for the request, so a publisher's next read never depends on how fast the tracker thread is.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis

from breakwater.cache.breaker import CircuitBreaker, is_hard_failure
from breakwater.cache.local import LocalTier
from breakwater.database import causal
from breakwater.observability import cache_metrics

log = logging.getLogger(__name__)

_STORE_IF_CURRENT = """
for i = 2, #KEYS do
  local current = redis.call('GET', KEYS[i])
  local n = '0'
  if current then n = string.match(current, '^(%d+)') end
  if n ~= ARGV[i + 1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# KEYS: the generation keys, then the bump-sequence key. ARGV: the causal token, the marker prefix.
# The sequence numbers bumps in Redis' own execution order; the marker key named after it makes
# Redis' tracking message carry the number to every process (see LocalTier.seq). A new or flushed
# Redis starts the sequence at its clock in milliseconds, above any number handed out before.
_BUMP = """
local seq_key = KEYS[#KEYS]
for i = 1, #KEYS - 1 do
  local current = redis.call('GET', KEYS[i])
  local n = 0
  if current then n = tonumber(string.match(current, '^(%d+)')) end
  redis.call('SET', KEYS[i], (n + 1) .. '|' .. ARGV[1])
end
local seq = redis.call('INCR', seq_key)
if seq == 1 then
  local t = redis.call('TIME')
  seq = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', seq_key, seq)
end
redis.call('SET', ARGV[2] .. seq, '1', 'PX', 60000)
return seq
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class Result:
    value: bytes
    status: str  # hit | miss | stale | bypass | error


class Cache:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        enabled: bool = True,
        lock_ms: int = 3000,
        wait_s: float = 2.0,
        breaker: CircuitBreaker | None = None,
        local_url: str | None = None,
        before_refill: Callable[[], None] | None = None,
    ):
        self.client = client
        self.prefix = prefix.rstrip(":") + ":"
        self.enabled = enabled
        self.lock_ms = lock_ms
        self.wait_s = wait_s
        self.breaker = breaker or CircuitBreaker()
        self._store = client.register_script(_STORE_IF_CURRENT)
        self._bump = client.register_script(_BUMP)
        self._unlock = client.register_script(_UNLOCK)
        self.local = LocalTier(local_url, self.gen_key(""), self.seq_key) if local_url else None
        self.before_refill = before_refill
        self._pending_bumps: dict[str, str] = {}
        self._pending_lock = threading.Lock()

    # ------------------------------------------------------------------ keys
    def value_key(self, key: str) -> str:
        return f"{self.prefix}v:{key}"

    def gen_key(self, namespace: str) -> str:
        return f"{self.prefix}g:{namespace}"

    def lock_key(self, key: str) -> str:
        return f"{self.prefix}l:{key}"

    @property
    def seq_key(self) -> str:
        return f"{self.prefix}s"

    @property
    def seq_marker_prefix(self) -> str:
        return self.gen_key("~")

    # ------------------------------------------------------------------ reading
    def get_or_compute(
        self,
        name: str,
        key: str,
        deps: tuple[str, ...],
        compute: Callable[[], bytes | tuple[bytes, float]],
        soft_ttl: float,
        hard_ttl: float | None = None,
    ) -> Result:
        """``name`` labels metrics (e.g. "regions"); ``compute`` returns the bytes to cache."""
        if not self.enabled or not self.breaker.allow():
            return self._bypass(name, compute, "bypass")
        hard_ttl = hard_ttl or max(soft_ttl * 20, 3600)
        epoch = 0
        if self._pending_bumps:
            self._flush_pending_bumps()  # bump() itself keeps them pending if Redis still fails
        if self.local is not None:
            self.local.ensure_running()
            # A request that published (here or in another process) skips the local tier until this
            # process has processed that publish's invalidation.
            if causal.state().cache_seq <= self.local.seq:
                payload = self.local.get(key, deps)
                if payload is not None:
                    cache_metrics.EVENTS.labels(name, "hit").inc()
                    cache_metrics.LOCAL_HITS.labels(name).inc()
                    return Result(payload, "hit")
            else:
                cache_metrics.LOCAL_SKIPS.inc()
            epoch = self.local.epoch
        try:
            raw, gens, tokens = self._read(key, deps)
        except redis.RedisError as exc:
            return self._redis_failed(name, compute, exc)
        self.breaker.success()
        if raw is not None:
            header, payload = _split(raw)
            if header.get("g") == gens:
                if time.time() < header.get("s", 0):
                    cache_metrics.EVENTS.labels(name, "hit").inc()
                    if self.local is not None:
                        self.local.remember(key, deps, gens, tokens, epoch, header["s"], payload)
                    return Result(payload, "hit")
                # Past the soft TTL: one refresher, everyone else gets the stale value.
                if not self._try_lock(key):
                    cache_metrics.EVENTS.labels(name, "stale").inc()
                    return Result(payload, "stale")
                return self._refill(name, key, deps, gens, tokens, compute, soft_ttl, hard_ttl, locked=True)
        # Missing, or computed under an older generation: never serve it; one computes, others wait.
        if self._try_lock(key):
            # Double-checked: the previous holder may have stored it between our read and our lock.
            stored = self._fresh(key, deps)
            if stored is not None:
                self._release(key)
                cache_metrics.EVENTS.labels(name, "hit").inc()
                return Result(stored, "hit")
            return self._refill(name, key, deps, gens, tokens, compute, soft_ttl, hard_ttl, locked=True)
        waited = self._wait_for(key, deps)
        if waited is not None:
            cache_metrics.EVENTS.labels(name, "hit").inc()
            return Result(waited, "hit")
        return self._refill(name, key, deps, gens, tokens, compute, soft_ttl, hard_ttl, locked=False)

    def _read(self, key: str, deps: tuple[str, ...]) -> tuple[bytes | None, list[int], list[str]]:
        values = self.client.mget([self.value_key(key), *(self.gen_key(d) for d in deps)])
        gens, tokens = [], []
        for v in values[1:]:
            n, _, token = (v or b"0|").decode().partition("|")
            gens.append(int(n or 0))
            tokens.append(token)
        return values[0], gens, tokens

    def _fresh(self, key: str, deps: tuple[str, ...]) -> bytes | None:
        try:
            raw, gens, _tokens = self._read(key, deps)
        except redis.RedisError as exc:
            self.breaker.failure(is_hard_failure(exc))
            return None
        self.breaker.success()
        if raw is None:
            return None
        header, payload = _split(raw)
        return payload if header.get("g") == gens and time.time() < header.get("s", 0) else None

    def _release(self, key: str) -> None:
        token = self._lock_tokens.pop(key, None)
        if token:
            try:
                self._unlock(keys=[self.lock_key(key)], args=[token])
                self.breaker.success()
            except redis.RedisError as exc:
                self.breaker.failure(is_hard_failure(exc))

    def _try_lock(self, key: str) -> bool:
        token = uuid.uuid4().hex
        try:
            locked = self.client.set(self.lock_key(key), token, nx=True, px=self.lock_ms)
            self.breaker.success()
            if locked:
                self._lock_tokens[key] = token
                return True
        except redis.RedisError as exc:
            self.breaker.failure(is_hard_failure(exc))
        return False

    @property
    def _lock_tokens(self) -> dict[str, str]:
        """Lock tokens held by this thread (the thread that locks is the one that unlocks)."""
        if not hasattr(_local, "locks"):
            _local.locks = {}
        return _local.locks

    def _wait_for(self, key: str, deps: tuple[str, ...]) -> bytes | None:
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            time.sleep(0.02)
            try:
                # Lock first, value second: the winner stores before it unlocks, so a released
                # lock guarantees the value (if any was stored) is visible to the read after it.
                locked = self.client.exists(self.lock_key(key))
                raw, gens, _tokens = self._read(key, deps)
            except redis.RedisError as exc:
                self.breaker.failure(is_hard_failure(exc))
                return None
            self.breaker.success()
            if raw is not None:
                header, payload = _split(raw)
                if header.get("g") == gens:
                    return payload
            if not locked:
                return None
        return None

    def _refill(self, name, key, deps, gens, tokens, compute, soft_ttl, hard_ttl, locked: bool) -> Result:
        cache_metrics.EVENTS.labels(name, "miss").inc()
        try:
            epoch = self.local.epoch if self.local is not None else 0
            payload, ttl = _unpack(self._compute_after(tokens, name, compute), soft_ttl)
            soft_expiry = time.time() + ttl
            header = json.dumps({"g": gens, "s": soft_expiry}).encode()
            try:
                stored = self._store(
                    keys=[self.value_key(key), *(self.gen_key(d) for d in deps)],
                    args=[header + b"\n" + payload, int(hard_ttl * 1000), *gens],
                )
                if not stored:
                    cache_metrics.EVENTS.labels(name, "discarded").inc()
                elif self.local is not None:
                    self.local.remember(key, deps, gens, tokens, epoch, soft_expiry, payload)
                self.breaker.success()
            except redis.RedisError as exc:
                self.breaker.failure(is_hard_failure(exc))
                log.warning("cache store failed for %s: %s", key, exc)
            return Result(payload, "miss")
        finally:
            if locked:
                self._release(key)

    def _compute_after(self, tokens: list[str], name: str, compute: Callable[[], bytes]) -> bytes:
        """Compute with the publish tokens merged in, so replicas behind the publish are not used."""
        state = causal.state()
        saved = (state.token, state.mode, set(state.verified))
        publish = causal.merge(*tokens)
        if publish and not causal.covers(state.token, publish):
            state.token = causal.merge(state.token, publish)
            state.verified.clear()  # replicas checked against the older token prove nothing now
            if state.mode in ("eventual", "bounded"):
                state.mode = "causal"
            if self.before_refill is not None:
                self.before_refill()  # a read transaction pinned to a replica must choose again
        try:
            cache_metrics.RECOMPUTES.labels(name).inc()
            return compute()
        finally:
            state.token, state.mode, state.verified = saved

    def _bypass(self, name: str, compute: Callable[[], bytes], status: str) -> Result:
        cache_metrics.EVENTS.labels(name, status).inc()
        cache_metrics.RECOMPUTES.labels(name).inc()
        return Result(_unpack(compute(), 0)[0], status)

    def _redis_failed(self, name: str, compute: Callable[[], bytes], exc: Exception) -> Result:
        self.breaker.failure(is_hard_failure(exc))
        log.warning("redis unavailable, serving %s from the database: %s", name, exc)
        return self._bypass(name, compute, "error")

    # ------------------------------------------------------------------ invalidation
    def bump(self, *namespaces: str, token: str = "") -> int:
        """Move the generations of ``namespaces``; call after the database commit.

        Returns the bump's sequence number (0 when Redis did not take it and it was deferred)."""
        if not namespaces:
            return 0
        if self.local is not None:
            self.local.forget(namespaces)  # this process sees its own publish at once
        try:
            seq = int(
                self._bump(
                    keys=[*(self.gen_key(n) for n in namespaces), self.seq_key],
                    args=[token, self.seq_marker_prefix],
                )
            )
            if self.local is not None:
                self.local.forget(namespaces)  # again: a thread may have re-read the old one meanwhile
            self.breaker.success()
            return seq
        except redis.RedisError as exc:
            self.breaker.failure(is_hard_failure(exc))
            with self._pending_lock:
                for n in namespaces:
                    self._pending_bumps[n] = causal.merge(self._pending_bumps.get(n, ""), token)
            log.warning("cache invalidation of %s deferred until Redis answers: %s", namespaces, exc)
            return 0

    def _flush_pending_bumps(self) -> None:
        if not self._pending_bumps:
            return
        with self._pending_lock:
            pending, self._pending_bumps = self._pending_bumps, {}
        for namespace, token in pending.items():
            self.bump(namespace, token=token)


def _split(raw: bytes) -> tuple[dict, bytes]:
    head, _, payload = raw.partition(b"\n")
    try:
        return json.loads(head), payload
    except ValueError:
        return {}, payload


def _unpack(out: bytes | tuple[bytes, float], soft_ttl: float) -> tuple[bytes, float]:
    """``compute`` may return bytes, or (bytes, soft TTL) when the value knows when it goes stale."""
    if isinstance(out, tuple):
        return out[0], min(out[1], soft_ttl) if soft_ttl else out[1]
    return out, soft_ttl


_local = threading.local()
