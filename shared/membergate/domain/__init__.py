"""Pure rules: no I/O, no clock (``now`` is always passed in), standard library only."""
