"""The uWSGI-compatible WSGI app server (`pyfront app`, and every [uwsgi] section under `pyfront serve`).

Modules: options (the [uwsgi] option table, parsing, validation -> AppConfig), packet (uwsgi
packets via the C core), wsgi (environ, start_response, wsgi.input, response writing),
worker (one pre-forked process: threads accepting and serving), master (pre-fork, respawn,
reload, harakiri, max-requests), venv (virtualenv/home resolution), cli (`pyfront app`).
"""
