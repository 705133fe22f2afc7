"""What judging live media shares across stream types (HLS, DASH, HTTP-FLV, RTMP): decoding with PyAV and
the content findings (frozen, black, silent, timestamp gaps), the pace of a live read against the wall
clock, and the sentences that name them. Pure or blocking helpers only: nothing here fetches anything.
"""
