"""Queries over data products: parse, check, plan, run on an engine, release."""
