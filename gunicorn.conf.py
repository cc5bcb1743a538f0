"""gunicorn's settings, read by `gunicorn wsgi:app` (and `make run`) started from the project root.

The request line and header limits are set above the app's own (api/inputs.py: a 4094-byte request
target, 8190-byte header lines, 100 header fields), so that a request over those is answered by the
app, as problem+json (414, 431). Past the limits below, gunicorn answers itself, with an HTML page.
"""

limit_request_line = 8190  # gunicorn's largest: method, target and version
limit_request_field_size = 16380
limit_request_fields = 200

# The access log masks feed tokens and credentials (api/access_log.py).
logger_class = "api.access_log.RedactingLogger"
