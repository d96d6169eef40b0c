"""Redis caching with generations, soft TTLs, stampede locks and a circuit breaker.

See :mod:`breakwater.cache.store` for the rules; views use :func:`breakwater.cache.http.cached_json`.
"""
