"""Tokenizer for nginx configuration syntax, faithful to nginx's own reader.

nginx reads a file one statement at a time (`ngx_conf_read_token`): words separated by
blanks, ended by `;` (a simple directive), `{` (a block opens) or a lone `}` (a block
closes). The rules reproduced here, because real configs depend on them:

- `#` starts a comment only where a new word could start (`a#b` is one word);
- a word that starts with `"` or `'` ends at the matching quote, which must be followed
  by a blank, `;` or `{` (else: `unexpected "x"`); quotes inside a word are literal;
- `\\` protects the next character from the reader; when the word is stored, `\\"`,
  `\\'` and `\\\\` lose the backslash and `\\t`, `\\r`, `\\n` become TAB, CR, LF; any other
  `\\x` stays as written (regexes keep their backslashes);
- `${` inside a word does not open a block (`${var}` variable syntax);
- the line number nginx reports for a statement is the line of its terminator.

Errors are raised as ConfigError with nginx's exact wording. The reader is a generator so
the parser can act on each statement before the next is read, as nginx does: the first
error nginx would meet is the one reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from pyfront.config.diagnostics import ConfigError, Diagnostic

BLANKS = " \t\r\n"
# nginx copies each word through a 4096-byte buffer (NGX_CONF_BUFFER); longer ones fail.
MAX_WORD = 4096


@dataclass(frozen=True)
class Word:
    value: str      # after escape processing, without the surrounding quotes
    line: int       # line where the word starts
    quote: str = "" # '"' or "'" if the word was quoted, else ""


@dataclass(frozen=True)
class Stmt:
    words: tuple[Word, ...]
    end: str        # ";" | "{" | "}" | "" (end of file)
    line: int       # nginx's current line when the statement ended (used in messages)

    @property
    def name(self) -> str:
        return self.words[0].value if self.words else ""

    @property
    def args(self) -> tuple[str, ...]:
        return tuple(w.value for w in self.words[1:])


def _unescape(raw: str) -> str:
    out = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n:
            nxt = raw[i + 1]
            if nxt in "\"'\\":
                out.append(nxt)
                i += 2
                continue
            if nxt in "trn":
                out.append({"t": "\t", "r": "\r", "n": "\n"}[nxt])
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _err(msg: str, file: str | None, line: int) -> ConfigError:
    return ConfigError(Diagnostic("emerg", msg, file, line))


def statements(text: str, file: str | None = None, param: bool = False) -> Iterator[Stmt]:
    """Yield statements of `text` in order; the last one has end == "" (end of file).

    `param=True` reads a command-line parameter string (nginx -g), where running out of
    input mid-statement is `unexpected end of parameter, expecting ";"`.
    """
    line = 1
    pos, n = 0, len(text)
    while True:
        words: list[Word] = []
        need_space = False
        last_space = True
        sharp_comment = False
        quoted = False
        s_quoted = d_quoted = False
        variable = False
        start = pos
        start_line = line
        while True:
            if pos >= n:
                if words or not last_space:
                    if param:
                        raise _err('unexpected end of parameter, expecting ";"', file, line)
                    raise _err('unexpected end of file, expecting ";" or "}"', file, line)
                yield Stmt(tuple(words), "", line)
                return
            ch = text[pos]
            pos += 1
            if ch == "\n":
                line += 1
                sharp_comment = False
            if sharp_comment:
                continue
            if quoted:
                quoted = False
                continue
            if need_space:
                if ch in BLANKS:
                    last_space = True
                    need_space = False
                    continue
                if ch == ";":
                    yield Stmt(tuple(words), ";", line)
                    break
                if ch == "{":
                    yield Stmt(tuple(words), "{", line)
                    break
                if ch != ")":
                    raise _err(f'unexpected "{ch}"', file, line)
                # `"a")`: nginx lets a ")" follow a quoted word (for `if (...)`), as a new word
                last_space = True
                need_space = False
            if last_space:
                if ch in BLANKS:
                    continue
                start = pos - 1
                start_line = line
                if ch in ";{":
                    if not words:
                        raise _err(f'unexpected "{ch}"', file, line)
                    yield Stmt(tuple(words), ch, line)
                    break
                if ch == "}":
                    if words:
                        raise _err('unexpected "}"', file, line)
                    yield Stmt((), "}", line)
                    break
                if ch == "#":
                    sharp_comment = True
                    continue
                if ch == "\\":
                    quoted = True
                    last_space = False
                    continue
                if ch == '"':
                    start += 1
                    d_quoted = True
                    last_space = False
                    continue
                if ch == "'":
                    start += 1
                    s_quoted = True
                    last_space = False
                    continue
                if ch == "$":
                    variable = True
                last_space = False
                continue
            # inside a word
            if ch == "{" and variable:
                continue
            variable = False
            if ch == "\\":
                quoted = True
                continue
            if ch == "$":
                variable = True
                continue
            found = False
            quote = ""
            if d_quoted:
                if ch == '"':
                    d_quoted = False
                    need_space = True
                    found = True
                    quote = '"'
            elif s_quoted:
                if ch == "'":
                    s_quoted = False
                    need_space = True
                    found = True
                    quote = "'"
            elif ch in BLANKS or ch in ";{":
                last_space = True
                found = True
            if not found:
                if pos - start >= MAX_WORD:
                    if d_quoted or s_quoted:
                        q = '"' if d_quoted else "'"
                        raise _err(f'too long parameter, probably missing terminating "{q}" character',
                                   file, start_line)
                    raise _err(f'too long parameter "{text[start:start + 10]}..." started', file, start_line)
                continue
            words.append(Word(_unescape(text[start:pos - 1]), start_line, quote))
            if ch == ";":
                yield Stmt(tuple(words), ";", line)
                break
            if ch == "{":
                yield Stmt(tuple(words), "{", line)
                break


def tokens(text: str, file: str | None = None) -> list[tuple[str, str]]:
    """Flat token list: ("word", value) / ("quoted", value) / (";"|"{"|"}", "") — for tests and tools."""
    out: list[tuple[str, str]] = []
    for st in statements(text, file):
        for w in st.words:
            out.append(("quoted" if w.quote else "word", w.value))
        if st.end:
            out.append((st.end, ""))
    return out


def quote_word(value: str) -> str:
    """Render a value so that nginx's reader gives `value` back (double quotes, escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(toks: list[tuple[str, str]], indent: str = "    ") -> str:
    """Text that tokenizes back to `toks` (every word quoted; one statement per line)."""
    lines: list[str] = []
    depth = 0
    cur: list[str] = []
    for kind, value in toks:
        if kind in ("word", "quoted"):
            cur.append(quote_word(value))
            continue
        if kind == "}":
            depth = max(depth - 1, 0)
            lines.append(indent * depth + "}")
            continue
        lines.append(indent * depth + " ".join(cur) + (" {" if kind == "{" else ";"))
        if kind == "{":
            depth += 1
        cur = []
    return "\n".join(lines) + "\n"
