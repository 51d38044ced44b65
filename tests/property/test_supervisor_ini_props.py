"""Hypothesis over the Supervisor-style ini layer: any value is a diagnostic, never a crash."""
from hypothesis import HealthCheck, given, settings, strategies as st

from pyfront.config.diagnostics import Report
from pyfront.config.ini import IniSyntaxError, read_ini
from pyfront.supervise.config import SETTINGS, parse_supervisor_sections

PROGRAM_KEYS = sorted(s.key for s in SETTINGS if s.section == "program")
EXPANDED_KEYS = sorted(s.key for s in SETTINGS if s.section == "program" and s.expand and s.key not in (
    "environment",))
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
                 max_size=40).map(str.strip)
SETTINGS_KW = dict(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse(text: str) -> Report:
    r = Report()
    try:
        sections = read_ini(text, "/etc/p/progs.conf")
    except IniSyntaxError:
        return r
    parse_supervisor_sections(sections, "/etc/p", r, run_dir="/tmp/pyfront-prop-run", environ={"HOME": "/h"})
    for d in r.diagnostics:
        assert d.file and d.line, d        # every diagnostic names file:line
    return r


@settings(**SETTINGS_KW)
@given(st.dictionaries(st.sampled_from(PROGRAM_KEYS), values, max_size=8))
def test_arbitrary_program_values_never_crash(kv):
    body = "".join(f"{k} = {v}\n" for k, v in kv.items() if v and not v.startswith(("[", ";", "#")))
    _parse("[program:p]\n" + body)


@settings(**SETTINGS_KW)
@given(st.sampled_from(EXPANDED_KEYS), st.from_regex(r"[a-z_]{1,10}", fullmatch=True))
def test_unknown_expansion_names_the_key(key, name):
    if name in ("here", "program_name", "host_node_name", "group_name", "process_num", "numprocs"):
        return
    lines = ["[program:p]", "command = run"]
    if key == "command":
        lines = ["[program:p]"]
    lines.append(f"{key} = a %({name})s b")
    r = _parse("\n".join(lines) + "\n")
    errors = [d for d in r.diagnostics if d.is_error]
    assert errors, key
    assert any(f"'{key}'" in d.message and name in d.message and d.line == len(lines) for d in errors), \
        [d.format() for d in errors]


@settings(**SETTINGS_KW)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text):
    _parse(text)
