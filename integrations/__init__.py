"""Adapters to the outside world. Plain dataclasses in and out: no Flask, no database."""
