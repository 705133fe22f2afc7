"""The `dash` check type: MPEG-DASH manifests (live `type="dynamic"` and VOD), judged like HLS."""
