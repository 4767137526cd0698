"""Use cases: each depends on ports, never on a concrete adapter."""
