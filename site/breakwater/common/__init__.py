"""The bottom layer every package may use: time, field validation, the API error, GTID positions.

Nothing here imports another Breakwater package (``make lint`` keeps it so).
"""
