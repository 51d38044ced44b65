"""The bundled example's supervised program: a stdlib heartbeat on stdout, once a minute.

`pyfront ctl tail ticker` shows it; `pyfront ctl stop ticker` / `start ticker` drive it."""
import time

n = 0
while True:
    print(f"ticker: tick {n}", flush=True)
    n += 1
    time.sleep(60)
