"""A safe subset of Markdown for task and note text: links, inline code, emphasis.

Everything is escaped first-hand; the only HTML that comes out is made here
(`a`, `code`, `strong`, `em`, `br`, `p`, `pre`), and links go only to
http(s) and mailto addresses. No raw HTML from users ever reaches a page.
"""
import re

from markupsafe import Markup, escape

_CODE = re.compile(r"(`+)(.+?)\1", re.S)
_LINK = re.compile(r"!?\[([^\]\n]+)\]\(\s*([^()\s]+)(?:\s+\"[^\"]*\")?\s*\)|(https?://[^\s<>\"'`]+)")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_EM = re.compile(r"\*(?=[^\s*])(.+?)(?<=[^\s*])\*|(?<!\w)_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)")
_SAFE_URL = re.compile(r"(https?://|mailto:)", re.I)
_TRAILING = ".,;:!?)]}'\""
_HEADING = re.compile(r" {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def _emphasis(text):
    """Escaped text with **strong** and *em* (or __ and _) turned into tags."""
    out, last = [], 0
    for m in _STRONG.finditer(text):
        out += [_em(text[last:m.start()]), Markup("<strong>%s</strong>") % _em(m.group(1) or m.group(2))]
        last = m.end()
    out.append(_em(text[last:]))
    return Markup("").join(out)


def _em(text):
    out, last = [], 0
    for m in _EM.finditer(text):
        out += [escape(text[last:m.start()]), Markup("<em>%s</em>") % (m.group(1) or m.group(2))]
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _link(href, label):
    return Markup('<a href="%s" rel="nofollow noopener noreferrer">%s</a>') % (href, label)


def _links(text):
    out, last = [], 0
    for m in _LINK.finditer(text):
        label, href, bare = m.group(1), m.group(2), m.group(3)
        if bare:
            trimmed = bare.rstrip(_TRAILING)
            # A closing parenthesis belongs to the URL when it opened one, as in Wikipedia links.
            while bare[len(trimmed):].startswith(")") and trimmed.count("(") > trimmed.count(")"):
                trimmed += ")"
            out.append(_emphasis(text[last:m.start()]))
            out.append(_link(trimmed, trimmed))
            last = m.start() + len(trimmed)
            continue
        out.append(_emphasis(text[last:m.start()]))
        if _SAFE_URL.match(href):
            out.append(_link(href, _emphasis(label)))
        else:
            out.append(escape(m.group(0)))
        last = m.end()
    out.append(_emphasis(text[last:]))
    return Markup("").join(out)


def inline(text):
    """One line (or a task's text) as safe HTML: `code`, [links](url), bare URLs, emphasis."""
    out, last = [], 0
    for m in _CODE.finditer(text or ""):
        out.append(_links(text[last:m.start()]))
        out.append(Markup("<code>%s</code>") % m.group(2))
        last = m.end()
    out.append(_links((text or "")[last:]))
    return Markup("").join(out)


def block(text):
    """A note as safe HTML: paragraphs of inline Markdown, headings as bold lines, code fences as <pre>."""
    paragraphs, lines, fence = [], [], None

    def flush():
        if lines:
            paragraphs.append(Markup("<p>%s</p>") % Markup("<br>\n").join(lines))
            lines.clear()

    code = []
    for line in (text or "").replace("\r\n", "\n").split("\n"):
        opener = _FENCE.match(line)
        if fence is not None:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                paragraphs.append(Markup("<pre><code>%s</code></pre>") % "\n".join(code))
                fence, code = None, []
            else:
                code.append(line)
        elif opener:
            flush()
            fence = opener.group(1)
        elif not line.strip():
            flush()
        elif heading := _HEADING.fullmatch(line):
            flush()
            paragraphs.append(Markup('<p class="note-heading"><strong>%s</strong></p>') % inline(heading.group(1)))
        else:
            lines.append(inline(line.rstrip()))
    if fence is not None:
        paragraphs.append(Markup("<pre><code>%s</code></pre>") % "\n".join(code))
    flush()
    return Markup("\n").join(paragraphs)


def init_app(app):
    app.jinja_env.filters["inline_markdown"] = inline
    app.jinja_env.filters["note_markdown"] = block
