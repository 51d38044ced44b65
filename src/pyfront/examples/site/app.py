"""The bundled example's WSGI app (stdlib only): /app/ shows the request as the app sees it."""
import html
import os


def application(environ, start_response):
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(environ.get(k, '')))}</td></tr>"
                   for k in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "HTTP_HOST",
                             "REMOTE_ADDR", "HTTP_X_REQUEST_ID", "SERVER_PROTOCOL"))
    body = (f"<!doctype html><meta charset='utf-8'><title>pyfront WSGI example</title>"
            f"<h1>Hello from a WSGI app</h1><p>app worker pid {os.getpid()}</p>"
            f"<table>{rows}</table><p><a href='/'>back to the static site</a></p>").encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
