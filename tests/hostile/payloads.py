"""Hostile values and hypothesis strategies shared by the hostile-input tests."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
# What a page must never carry unescaped (each is also looked for on its own).
XSS_PAYLOADS = (SCRIPT, IMG)

HOSTILE_STRINGS = [
    "", " ", SCRIPT, IMG, "\x00", "a\x00b", "\r\nBcc: victim@evil.example", "\n", "\ud800",
    "=?utf-8?b?!!!?=", "=?x-unknown?q?abc?=", "\u202eevil", "\u200b", "１２３", "x" * 5000,
    "abuse@isp.example", "<abuse@isp.example>", "a@b.example, c@d.example", "@@", "<>",
    "9" * 40, "-1", "NaN", "1e309", "null", "[]", "{}", "{{ 7*7 }}", "%s%s%n", "../../etc",
]

json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.one_of(st.sampled_from(HOSTILE_STRINGS[:12]), st.text(max_size=8)),
                      children, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _apply(doc: Any, path: tuple, action: str, value: Any) -> Any:
    if not path:
        return value if action == "replace" else doc
    parent = doc
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return doc  # an earlier mutation removed the way there
    last = path[-1]
    try:
        if action == "delete":
            del parent[last]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        else:
            parent[last] = value
    except (KeyError, IndexError, TypeError):
        pass
    return doc


@st.composite
def mutated(draw, sample: Any, max_mutations: int = 3) -> Any:
    """`sample` with one to three of its nodes replaced, removed or repeated."""
    doc = copy.deepcopy(sample)
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "duplicate"]))
        doc = _apply(doc, path, action, draw(json_values))
    return doc


def dumps(value: Any) -> bytes:
    """JSON as an ESP might send it; NaN and lone surrogates included (Python writes both)."""
    return json.dumps(value).encode("utf-8", "surrogatepass")


# --- raw MIME -------------------------------------------------------------------------------

FROMS = [
    b"NOC <abuse@isp.example>", b"abuse@isp.example", b"ABUSE@ISP.EXAMPLE",
    b"abuse@isp.example\r\nBcc: victim@evil.example", b"=?utf-8?b?!!!?= <abuse@isp.example>",
    b"=?x-unknown?q?N=F6C?= <abuse@isp.example>", b"<>", b"", b"@@", b"\"unterminated <a@b",
    b"a@b.example, c@d.example, e@f.example", b"Ren\xe9 <ren\xe9@isp.example>",
    b"\xff\xfe<abuse@isp.example>", b"abuse@isp.example\x00", b"x" * 3000 + b"@isp.example",
    b"\"<script>alert(1)</script>\" <abuse@isp.example>", b"group: a@b.example, c@d.example;",
]
SUBJECTS = [
    b"Re: your letter", b"=?utf-8?q?Re:_st=C3=A4ngt?=", b"=?utf-8?b?" + b"A" * 50 + b"?=",
    b"=?iso-2022-jp?b?GyRCJDMbKEI=?=", b"=?bogus?x?zz?=", b"Re: <script>alert(1)</script>",
    b"a\x00b", b"line\r\n folded\r\n again", b"\xe9t\xe9", b"S" * 20000, b"",
]
CHARSETS = [b"utf-8", b"iso-8859-1", b"x-unknown-charset", b"utf-16", b"utf-8\x00", b"",
            b"\"utf-8", b"cp1252", b"us-ascii", b"utf-7"]
ENCODINGS = [b"7bit", b"8bit", b"base64", b"quoted-printable", b"x-uuencode", b"x-garbage", b""]
BODIES = [
    b"Fixed it, thanks.", b"<html><script>alert(1)</script><img src=x onerror=alert(1)>",
    b"\x00\x01\x02\xff\xfe", b"====", b"=ZZ=\r\n=", b"!!!not base64!!!", b"\xe9t\xe9 ferm\xe9",
    b"\r\n.\r\n", b"--b1\r\n\r\n--b1--",
]


@st.composite
def header_lines(draw, message_id: str) -> list[bytes]:
    lines = [b"From: " + draw(st.sampled_from(FROMS) | st.binary(max_size=60)),
             b"To: secureyourserver@ftc.example",
             b"Subject: " + draw(st.sampled_from(SUBJECTS) | st.binary(max_size=60))]
    refs = draw(st.sampled_from([
        message_id.encode(), b"<unknown@isp.example>", b"", b"<" * 50, b"\x00",
        (message_id.encode() + b" ") * 200, b"<a@b> <c@d>, <e@f>",
    ]))
    if draw(st.booleans()):
        lines.append(b"In-Reply-To: " + refs)
    if draw(st.booleans()):
        lines.append(b"References: " + refs)
    if draw(st.booleans()):
        lines.append(b"Message-ID: " + draw(st.sampled_from([b"<r@isp.example>", b"", b"\xff",
                                                              b"<" + b"m" * 400 + b">"])))
    extra = draw(st.lists(st.sampled_from([
        b"X-Spam: yes", b"no colon in this line", b" leading continuation", b"Date: garbage",
        b"Content-Disposition: attachment; filename=\"../../etc/passwd\"",
        b"X-Long: " + b"y" * 100000, b"\xff\xfe: weird", b"Bcc: victim@evil.example",
    ]), max_size=3))
    return lines + extra


@st.composite
def raw_mime(draw, message_id: str) -> bytes:
    """A reply as a stranger's mail server might send it: broken in as many ways as we can."""
    shape = draw(st.sampled_from(["single", "multipart", "nested", "bytes"]))
    if shape == "bytes":
        return draw(st.binary(max_size=400))
    lines = draw(header_lines(message_id))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    body = draw(st.sampled_from(BODIES) | st.binary(max_size=200))
    part_headers = [b"Content-Type: text/plain; charset=" + charset,
                    b"Content-Transfer-Encoding: " + encoding]
    if shape == "single":
        return b"\r\n".join(lines + part_headers) + b"\r\n\r\n" + body
    boundary = draw(st.sampled_from([b"b1", b"", b"b1\x00", b"-" * 80, b"\"b1"]))
    used = draw(st.sampled_from([boundary, b"b2"]))  # sometimes not the declared one
    html = draw(st.sampled_from(BODIES))
    inner = (b"--" + used + b"\r\n" + b"\r\n".join(part_headers) + b"\r\n\r\n" + body
             + b"\r\n--" + used + b"\r\nContent-Type: text/html; charset=" + charset
             + b"\r\n\r\n" + html + b"\r\n--" + used + b"--\r\n")
    if shape == "nested":
        inner = (b"--outer\r\nContent-Type: multipart/alternative; boundary=\"" + boundary
                 + b"\"\r\n\r\n" + inner + b"\r\n--outer--\r\n")
        boundary = b"outer"
    kind = b"multipart/mixed" if shape == "nested" else b"multipart/alternative"
    return (b"\r\n".join([*lines, b"MIME-Version: 1.0",
                          b"Content-Type: " + kind + b"; boundary=\"" + boundary + b"\""])
            + b"\r\n\r\n" + inner)
