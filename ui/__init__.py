"""Shared Streamlit helpers: widgets that return plain values and renderers for engine results.

Pages stay thin: read widgets (``ui``) -> compute (``cnnlab``) -> render (``ui``).
"""
