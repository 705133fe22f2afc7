"""The `hls` check type: playlists, segment fetches, freshness state between runs, metrics and content checks."""
