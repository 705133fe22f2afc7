"""Check files: reading YAML safely, the models, ${VAR}, conditions, durations, schedules, regexes, maintenance
windows and announcements. Nothing here runs a probe or opens a socket.
"""
