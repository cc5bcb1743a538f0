"""The scheduling domain: rules as plain functions over plain data, and services.

Nothing here imports Flask or reads a request.
"""
