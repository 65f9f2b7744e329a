"""The pure-Python (numpy) runtime: validator, executor and built-in node kernels.

Used when ``remotemedia._native`` cannot be imported or ``REMOTEMEDIA_RUNTIME=python``; gives the
same results and raises the same exceptions as the native engine, only slower.
"""
