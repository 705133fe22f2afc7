"""Timing check runs: the scheduler (when), the runner (one check once, with its timeout and conditions) and the
scheduler's own statistics.
"""
