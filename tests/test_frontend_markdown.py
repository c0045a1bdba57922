"""Task and note text is shown as a safe subset of Markdown: escaped first, then links,
inline code and emphasis; nothing a user writes becomes HTML of its own."""
import pytest
from hamcrest import assert_that, contains_string, equal_to, is_not

from frontend.markdown import block, inline


def test_html_in_a_task_is_shown_as_text():
    assert_that(inline('<script>alert("x")</script><img src=x onerror=alert(1)>'),
                equal_to("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"))


def test_inline_code_keeps_its_text_escaped_and_unformatted():
    assert_that(inline("run `grep -E 'a|b' <file> **x**`"),
                equal_to("run <code>grep -E &#39;a|b&#39; &lt;file&gt; **x**</code>"))


def test_a_bare_url_becomes_a_link_without_its_trailing_punctuation():
    assert_that(inline("see https://example.org/a_(b)?q=1&r=2."),
                equal_to('see <a href="https://example.org/a_(b)?q=1&amp;r=2" rel="nofollow noopener noreferrer">'
                         'https://example.org/a_(b)?q=1&amp;r=2</a>.'))


def test_a_markdown_link_keeps_its_label():
    assert_that(inline("[the *docs*](https://example.org/x)"),
                equal_to('<a href="https://example.org/x" rel="nofollow noopener noreferrer">the <em>docs</em></a>'))


@pytest.mark.parametrize("href", ["javascript:alert(1)", "data:text/html,hi", "vbscript:x", "//evil.example/x"])
def test_links_to_anything_but_web_and_mail_addresses_stay_text(href):
    html = inline(f"[click]({href})")

    assert_that(html, is_not(contains_string("<a")))
    assert_that(html, contains_string("click"))


def test_a_quote_cannot_break_out_of_a_link():
    assert_that(inline('https://example.org/"onmouseover="alert(1)'),
                equal_to('<a href="https://example.org/" rel="nofollow noopener noreferrer">https://example.org/</a>'
                         '&#34;onmouseover=&#34;alert(1)'))


def test_emphasis_and_strong_with_stars_and_underscores():
    assert_that(inline("**bold** *em* __b__ _e_"),
                equal_to("<strong>bold</strong> <em>em</em> <strong>b</strong> <em>e</em>"))


def test_underscores_inside_words_are_not_emphasis():
    assert_that(inline("snake_case_name and carry_over"), equal_to("snake_case_name and carry_over"))


def test_an_image_is_not_loaded():
    assert_that(inline("![Aggregation Pipeline](images/aggregation_pipeline.gif)"), is_not(contains_string("<img")))


def test_a_note_keeps_its_lines_headings_and_code_fences():
    note = "## mongodb queries\n`db.find()`:  \nline <b>\n\n```\ncode <i>\n```"

    assert_that(block(note), equal_to(
        '<p class="note-heading"><strong>mongodb queries</strong></p>\n'
        "<p><code>db.find()</code>:<br>\nline &lt;b&gt;</p>\n"
        "<pre><code>code &lt;i&gt;</code></pre>"))


def test_an_unclosed_code_fence_still_shows_its_code():
    assert_that(block("```\n<x>"), equal_to("<pre><code>&lt;x&gt;</code></pre>"))
