"""`prober run`: the daemon that wires config, scheduler, store, alerts, notify and the API together, and what
keeps it honest (the database lock, health, supervised tasks, logging).
"""
