# Read by gunicorn from the directory it starts in (`gunicorn wsgi:app`, `make run`).
# The access log masks feed tokens and credentials (api/access_log.py).
logger_class = "api.access_log.RedactingLogger"
