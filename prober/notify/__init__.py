"""Delivering incident notifications from the durable outbox: Apprise lanes (and other routes), each retried
independently.
"""
