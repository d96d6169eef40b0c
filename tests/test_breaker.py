"""The Redis circuit breaker: down opens it at once, slowness only when it persists."""

import redis

from breakwater.cache.breaker import CircuitBreaker, is_hard_failure


def test_refused_connection_opens_at_once_timeouts_only_in_a_row():
    breaker = CircuitBreaker(cooldown=60, threshold=3)
    assert breaker.allow()
    breaker.failure(hard=False)
    breaker.failure(hard=False)
    assert breaker.allow(), "two slow answers are not an outage"
    breaker.success()
    breaker.failure(hard=False)
    breaker.failure(hard=False)
    assert breaker.allow(), "a success in between resets the count"
    breaker.failure(hard=False)
    assert not breaker.allow()
    breaker.success()
    breaker.failure(hard=True)
    assert not breaker.allow()


def test_failure_kinds():
    assert is_hard_failure(redis.ConnectionError("refused"))
    assert not is_hard_failure(redis.TimeoutError("slow"))
    assert not is_hard_failure(redis.ResponseError("WRONGTYPE"))
