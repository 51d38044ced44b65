"""The nginx tokenizer: nginx's own reading rules (ngx_conf_read_token)."""
import pytest

from pyfront.config.diagnostics import ConfigError
from pyfront.config.nginx_lexer import render, statements, tokens


def stmts(text):
    return [(s.end, [w.value for w in s.words], s.line) for s in statements(text, "t.conf")]


def err(text):
    with pytest.raises(ConfigError) as e:
        list(statements(text, "t.conf"))
    d = e.value.diagnostics[0]
    return d.message, d.line


def test_statements_and_lines():
    text = "a b;\nc {\n  d 'e f'\n   ;\n}\n"
    assert stmts(text) == [(";", ["a", "b"], 1), ("{", ["c"], 2), (";", ["d", "e f"], 4), ("}", [], 5), ("", [], 6)]


def test_comments_only_at_word_start():
    assert tokens("a#b c; # comment ;\n") == [("word", "a#b"), ("word", "c"), (";", "")]


def test_quotes_and_escapes():
    assert tokens(r'''a "x\"y" 'p\'q' "t\tn\n" "\d" z\ y;''') == [
        ("word", "a"), ("quoted", 'x"y'), ("quoted", "p'q"), ("quoted", "t\tn\n"), ("quoted", "\\d"),
        ("word", "z\\ y"), (";", "")]


def test_quote_inside_word_is_literal():
    assert tokens('a b"c";') == [("word", "a"), ("word", 'b"c"'), (";", "")]


def test_variable_brace_does_not_open_block():
    assert tokens("a ${x}y b${z};") == [("word", "a"), ("word", "${x}y"), ("word", "b${z}"), (";", "")]
    # an escaped $ does not protect the brace
    assert stmts("a b\\${x};")[0][0] == "{"


def test_word_ends_at_brace_and_semicolon():
    assert tokens("a{b;}") == [("word", "a"), ("{", ""), ("word", "b"), (";", ""), ("}", "")]


def test_close_brace_inside_word_is_literal():
    assert tokens("a b};") == [("word", "a"), ("word", "b}"), (";", "")]


@pytest.mark.parametrize("text,msg,line", [
    ('a "b"c;', 'unexpected "c"', 1),
    ("a b", 'unexpected end of file, expecting ";" or "}"', 1),
    ("a\nb\n", 'unexpected end of file, expecting ";" or "}"', 3),
    ('a "b;\n', 'unexpected end of file, expecting ";" or "}"', 2),
    ("{", 'unexpected "{"', 1),
    ("\n;", 'unexpected ";"', 2),
    ("a }", 'unexpected "}"', 1),
])
def test_errors(text, msg, line):
    assert err(text) == (msg, line)


def test_param_mode_message():
    with pytest.raises(ConfigError) as e:
        list(statements("daemon off", None, param=True))
    assert e.value.diagnostics[0].message == 'unexpected end of parameter, expecting ";"'


def test_comment_at_eof_without_newline():
    assert stmts("a;# end") == [(";", ["a"], 1), ("", [], 1)]


def test_too_long_word():
    msg, line = err("a " + "x" * 5000 + ";")
    assert msg.startswith('too long parameter "xxxxxxxxxx..." started')


def test_render_round_trip():
    toks = tokens('a "b c" d\\"e;\nf { g; }\n')
    assert tokens(render(toks)) == [("quoted" if k == "word" else k, v) if k in ("word", "quoted") else (k, v)
                                    for k, v in toks]
