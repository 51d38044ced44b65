"""Request heads that do not fit the front's pooled 16 KiB packet buffer (proxy_encode.c
encodes into it first, then into the 64 KiB class): proxy_pass heads reach the upstream
whole. (uwsgi packets: tests/integration/test_stack_ukeep.py.)"""
from tests.integration.proxy_support import request, response_body, start_pyfront
from tests.integration.recorder import Recorder


def test_proxy_pass_head_over_16k(procs, tmp_path):
    rec = Recorder(None, "http")
    try:
        pf = start_pyfront(procs, tmp_path, f"location / {{ proxy_pass http://{rec.address}; }}",
                           extra_http="large_client_header_buffers 8 16k;")
        for size in (100, 40000):
            big = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * (size // 5)) for i in range(5))
            out = request(pf.port, b"GET /b HTTP/1.1\r\nHost: test.local\r\n" + big + b"Connection: close\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 200 OK") and response_body(out) == b"ok"
            hdrs = rec.requests[-1][0]
            assert all(hdrs[f"x-big-{i}"] == "v" * (size // 5) for i in range(5))
    finally:
        rec.close()
