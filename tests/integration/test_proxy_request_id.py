"""proxy_pass http:// upstreams get `X-Request-Id: $request_id` (the id the access log shows),
unless the client sent its own X-Request-Id (passed unchanged) or the config sets the field
with proxy_set_header (an empty value removes it). The HTTP upstream is a real socket server
(tests.integration.recorder) that records every header it receives."""
from __future__ import annotations

import re

from tests.integration.proxy_support import request, start_pyfront
from tests.integration.recorder import Recorder
from tests.integration.test_master_process import wait_until


def test_http_upstream_gets_the_request_id_unless_the_client_sent_one(procs, tmp_path):
    rec = Recorder(None, "http")
    log = tmp_path / "rid.log"
    try:
        pf = start_pyfront(procs, tmp_path, f"""
            access_log {log} rid;
            location / {{ proxy_pass http://{rec.address}; }}
            location /own {{ proxy_pass http://{rec.address}; proxy_set_header X-Request-Id fixed-by-config; }}
            location /none {{ proxy_pass http://{rec.address}; proxy_set_header X-Request-Id ""; }}""",
                           extra_http="log_format rid '$request_id $request_uri';")

        def get(path, extra=b""):
            out = request(pf.port, b"GET " + path + b" HTTP/1.1\r\nHost: test.local\r\n" + extra
                          + b"Connection: close\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 200 OK"), out[:200]
            return rec.requests[-1][0]

        first, second = get(b"/a")["x-request-id"], get(b"/b")["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
        assert first != second
        assert get(b"/c", b"X-Request-Id: client-chose-this\r\n")["x-request-id"] == "client-chose-this"
        assert get(b"/own")["x-request-id"] == "fixed-by-config"
        assert "x-request-id" not in get(b"/none")
        assert len(rec.requests) == 5

        def logged():
            return log.read_text() if log.exists() else ""
        wait_until(lambda: " /none" in logged(), what="access log lines")
        assert f"{first} /a\n" in logged() and f"{second} /b\n" in logged()
        # the access log keeps the front's own id when the client sent one (nginx's meaning)
        line_c = next(ln for ln in logged().splitlines() if ln.endswith(" /c"))
        assert re.fullmatch(r"[0-9a-f]{32} /c", line_c)
    finally:
        rec.close()
