"""Serving CNN Lab to a class: the nginx front, the warm-up, and a websocket Streamlit client.

Nothing here is part of the engine (``cnnlab``) or of the pages; it only starts, warms and
drives the Streamlit app from outside, the way a browser would.
"""
