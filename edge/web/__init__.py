"""The live view of ``hybrid-edge demo``: a standard-library HTTP server with MJPEG video and server-sent events.

``hub`` (newest frame and decisions, shared JPEG encoding), ``server`` (routes),
``auth`` (token, cookie, Host check), ``page`` (the one self-contained page),
``sources`` (synthetic activities and real-time replay), ``demo`` (the loop glue).
"""
