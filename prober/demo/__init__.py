"""`prober demo`: sample targets on loopback and a daemon watching them (run.py), the live HTTP-FLV and DASH
stream it encodes itself (stream.py), and its line and DNS servers (services.py). Loopback only."""
