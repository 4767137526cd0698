"""Everything that is not deployed code: the local stack, the Stripe sandbox, scripts, benchmarks."""
