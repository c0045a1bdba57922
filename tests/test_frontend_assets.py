"""Front-end assets come from npm at pinned versions: the htmx the app serves is the very
file of the locked package, and nothing is fetched from elsewhere at run time."""
import json
import re
from pathlib import Path

import pytest
from hamcrest import assert_that, equal_to, matches_regexp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = json.loads((ROOT / "package.json").read_text())
LOCK = json.loads((ROOT / "package-lock.json").read_text())
# vendored file in frontend/static/vendor/ -> (npm package, file in the package)
VENDORED = {"htmx.min.js": ("htmx.org", "dist/htmx.min.js")}


def installed(package):
    path = ROOT / "node_modules" / package
    assert path.exists(), f"node_modules/{package} is missing: run `make setup` (scripts/setup-frontend.sh)"
    return path


@pytest.mark.parametrize("package, version", {**PACKAGE["dependencies"], **PACKAGE["devDependencies"]}.items())
def test_every_npm_package_is_pinned_exactly_and_locked_at_that_version(package, version):
    assert_that(version, matches_regexp(r"^\d+\.\d+\.\d+$"))
    assert_that(LOCK["packages"][f"node_modules/{package}"]["version"], equal_to(version))


@pytest.mark.parametrize("package", {**PACKAGE["dependencies"], **PACKAGE["devDependencies"]})
def test_node_modules_holds_the_locked_version(package):
    manifest = json.loads((installed(package) / "package.json").read_text())

    assert_that(manifest["version"], equal_to(LOCK["packages"][f"node_modules/{package}"]["version"]))


@pytest.mark.parametrize("name", VENDORED)
def test_a_vendored_file_is_byte_identical_to_the_locked_package(name):
    package, path = VENDORED[name]

    assert (ROOT / "frontend" / "static" / "vendor" / name).read_bytes() == (installed(package) / path).read_bytes(), \
        f"frontend/static/vendor/{name} differs from {package}/{path}: copy it again after changing the pin"


def test_the_vendor_folder_holds_only_files_of_locked_packages():
    files = {p.name for p in (ROOT / "frontend" / "static" / "vendor").iterdir()}

    assert_that(files, equal_to(set(VENDORED)))


def test_pages_load_scripts_and_styles_only_from_the_app_itself():
    for template in (ROOT / "frontend" / "templates").glob("*.html"):
        elsewhere = re.findall(r'(?:src|href)="((?:https?:)?//[^"]*)"', template.read_text())
        assert not elsewhere, f"{template.name} loads {elsewhere} from another site"
    base = (ROOT / "frontend" / "templates" / "base.html").read_text()
    assert_that(re.findall(r"<script src=\"\{\{ url_for\('static', filename='([^']+)'\) \}\}\" defer>", base),
                equal_to(["vendor/htmx.min.js", "kyb.js"]))
