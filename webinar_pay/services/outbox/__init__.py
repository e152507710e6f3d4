"""Emails on schedule: every email the app sends is an `OutboxMessage` row, planned by the services, sent by one
dispatcher.

`kinds` (the kinds of message and the times they key off), `planning` (plan, move, cancel rows, inside the
caller's transaction), `compose` (render a message from its templates), `dispatch` (claim, compose, send, record
what went out). Import what you need from those modules; this package re-exports nothing.
"""
