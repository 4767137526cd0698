"""Concrete adapters for the ports; only bootstrap.py builds them."""
