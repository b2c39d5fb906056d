"""Environments and suites: what a candidate is trained and scored on."""
