"""Anti-fraud building blocks: the 1:N face index (Protocol + implementations), synthetic
template galleries for benchmarks, background descriptors and velocity counters.  Pure of the
service: no storage, no keys (sealing is injected)."""
