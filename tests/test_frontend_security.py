"""A form's way back (`next`) can only lead to a page of this site."""
import pytest
from hamcrest import assert_that, equal_to

from frontend.security import safe_next


@pytest.mark.parametrize("path", ["/", "/days/2026-11-24", "/stats?from=2026-01-01&to=2026-02-01"])
def test_a_path_on_this_site_is_kept(path):
    assert_that(safe_next(path), equal_to(path))


@pytest.mark.parametrize("path", ["", None, "https://evil.example/", "//evil.example", "/\\evil.example",
                                  "\\\\evil.example", "/\t/evil.example", "/\n/evil.example", "days", "javascript:x"])
def test_anything_that_could_leave_the_site_becomes_the_default(path):
    assert_that(safe_next(path, "/home"), equal_to("/home"))
