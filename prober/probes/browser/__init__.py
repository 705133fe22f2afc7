"""The `browser` check type: Playwright on Debian's Chromium, a shared browser pool, scripted steps, vitals and
recordings.
"""
