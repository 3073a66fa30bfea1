"""The Data Docs folder as a small static site that works offline.

GX renders pages that load Bootstrap, jQuery, Font Awesome and bootstrap-table from public CDNs
and link a Home page and suite pages laid out for a GX docs site this project does not keep.
Here the pages are made to stand alone under the folder `scripts/ui.sh` serves: every CDN file
they use is copied from `static/` (the npm packages GX names, same versions, licences beside
them; see static/README.md) to `<root>/_static/` and linked relatively, the Home link opens
`<root>/index.html` (every report, newest run first) and the suite link `<root>/_suites/...`.
Vega (charts of distribution expectations, which these suites do not have) and the
dark-mode stylesheet are left out, so nothing on a page asks a host other than the server.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
from pathlib import Path

STATIC = Path(__file__).parent / "static"
STATIC_FOLDER = "_static"
SUITES_FOLDER = "_suites"

# CDN address in GX 1.24's templates -> the vendored copy under static/
_VENDORED = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap-4.3.1/bootstrap.min.js"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js-1.12.9/popper.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free-6.6.0/css/all.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.js",
}
_TAG = re.compile(
    r"<(?P<tag>script|link)\b[^>]*?\b(?:src|href)=\"(?P<url>https?://[^\"]+)\"[^>]*>"
    r"(?:\s*</script>)?",
    re.IGNORECASE,
)
_LOGO = re.compile(r"https://great-expectations-web-assets[^\"]*/logo-long\.png[^\"]*")
_HOME = re.compile(r"(?:\.\./)+index\.html")
_SUITE = re.compile(r"(?:\.\./)+expectations/[^\"]+\.html")
_FAVICON = re.compile(r"(?:\.\./)+static/images/favicon\.ico")


def install_static(root: Path) -> Path:
    """Copy the vendored files to `<root>/_static` once (a copy per folder, so the served
    folder alone is the whole site)."""
    target = root / STATIC_FOLDER
    marker = target / ".complete"
    if not marker.exists():
        shutil.copytree(STATIC, target, dirs_exist_ok=True)
        marker.touch()
    return target


def localize(page: str, up: str, suite_page: str | None = None) -> str:
    """A GX page with every CDN file served from `<root>/_static` and its Home, suite and
    favicon links pointing into this folder; `up` is the relative way to the root."""

    def tag(match: re.Match[str]) -> str:
        url = match.group("url")
        local = _VENDORED.get(url)
        if local is not None:
            href = f"{up}{STATIC_FOLDER}/{local}"
            if match.group("tag").lower() == "script":
                return f'<script src="{href}"></script>'
            return f'<link rel="stylesheet" href="{href}">'
        return ""  # vega, the dark theme, anything new: nothing off this server is loaded

    page = _TAG.sub(tag, page)
    page = _LOGO.sub(f"{up}{STATIC_FOLDER}/great_expectations/images/logo-long.png", page)
    page = _FAVICON.sub(f"{up}{STATIC_FOLDER}/great_expectations/images/favicon.ico", page)
    page = _HOME.sub(f"{up}index.html", page)
    if suite_page is not None:
        page = _SUITE.sub(f"{up}{SUITES_FOLDER}/{suite_page}", page)
    return page


def write_atomically(path: Path, text: str) -> None:
    """Checks of several runs may write the same folder at once: never a half-written page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temp, path)


def write_home(root: Path) -> Path:
    """`<root>/index.html`: every report page by run (newest first) and partition."""
    runs = sorted(
        (d for d in root.iterdir() if d.is_dir() and not d.name.startswith("_")),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    items = []
    for run in runs:
        pages = sorted(run.glob("*/*.html"))
        links = "".join(
            f'<li><a href="{html.escape(p.relative_to(root).as_posix())}">'
            f"{html.escape(p.parent.name)} &middot; {html.escape(p.stem)}</a></li>"
            for p in pages
        )
        items.append(f"<h5 class='mt-4'>run {html.escape(run.name)}</h5><ul>{links}</ul>")
    body = "".join(items) or "<p>No reports yet.</p>"
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Quality reports</title>"
        f"<link rel='stylesheet' href='{STATIC_FOLDER}/bootstrap-4.3.1/bootstrap.min.css'>"
        "</head><body><div class='container'><h1 class='mt-4'>Quality reports</h1>"
        "<p>Great Expectations validations of descriptor_pipeline's asset checks, one page "
        f"per run, partition and suite.</p>{body}</div></body></html>"
    )
    path = root / "index.html"
    write_atomically(path, page)
    return path
