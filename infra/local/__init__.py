"""The local stack: the whole system on a laptop, no AWS account and no internet."""
