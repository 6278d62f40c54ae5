"""Check a built HTML site in a real browser (headless Debian Chromium driven by Playwright).

Used by ``tests/test_docs.py``; also runnable by hand on any build:

    .venv/bin/python tests/site_check.py docs/_build/html
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

CHROMIUM = "/usr/bin/chromium"
# the probe's flags for this machine: no sandbox as root, and no background calls to the internet
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serve(root: Path):
    """Serve ``root`` over HTTP on a free loopback port; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def site_pages(root: Path) -> list[str]:
    """Every HTML page of the site, relative to its root (not the copied sources or static files)."""
    skip = ("_static", "_sources", "_images", "_modules")
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.html")
        if p.relative_to(root).parts[0] not in skip
    )


PAGE_SCRIPT = """() => {
  const images = [...document.images].map(img => ({
    src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0 }));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  const errors = [...document.querySelectorAll(
      '.output.error, .output.traceback, .cell_output .output.stderr, div.error, .system-message')]
      .map(e => e.className);
  const text = document.body.innerText;
  return {images, links, ids, errors, traceback: text.includes('Traceback (most recent call last)'),
          title: document.title};
}"""


def check_site(root: Path, search_term: str = "surrogate") -> list[str]:
    """Open every page of the site at ``root``; return a list of problems (empty when all is well)."""
    from playwright.sync_api import sync_playwright

    root = Path(root)
    problems: list[str] = []
    pages = site_pages(root)
    if not pages:
        return [f"no HTML pages under {root}"]
    with serve(root) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(f"{request.url} ({request.failure})"))
        page.on(
            "response",
            lambda response: (
                failed.append(f"{response.url} (HTTP {response.status})") if response.status >= 400 else None
            ),
        )
        # nothing leaves the machine: requests to other hosts are refused and reported
        page.route(
            lambda url: not url.startswith(base),
            lambda route: (failed.append(f"{route.request.url} (external request)"), route.abort()),
        )
        ids_of: dict[str, set[str]] = {}
        links_of: dict[str, list[str]] = {}
        for rel in pages:
            failed.clear()
            page.goto(base + rel, wait_until="load")
            page.wait_for_load_state("networkidle")
            info = page.evaluate(PAGE_SCRIPT)
            problems += [f"{rel}: broken image {img['src']}" for img in info["images"] if not img["ok"]]
            problems += [f"{rel}: failed to load {item}" for item in failed]
            problems += [f"{rel}: shows an error output ({cls})" for cls in info["errors"]]
            if info["traceback"]:
                problems.append(f"{rel}: shows a raw traceback")
            ids_of[rel] = set(info["ids"])
            links_of[rel] = info["links"]
        # internal links: the target file exists and, for #fragments into site pages, the anchor too
        for rel, links in links_of.items():
            for link in links:
                if not link.startswith(base):
                    continue
                target, fragment = urldefrag(link[len(base) :])
                target = unquote(urlparse(target).path) or "index.html"
                if target.endswith("/"):
                    target += "index.html"
                if not (root / target).is_file():
                    problems.append(f"{rel}: broken link to {target}")
                elif fragment and target in ids_of and unquote(fragment) not in ids_of[target]:
                    problems.append(f"{rel}: broken anchor {target}#{fragment}")
        if (root / "search.html").is_file():
            page.goto(f"{base}search.html?q={search_term}", wait_until="load")
            try:
                page.wait_for_selector("#search-results li", timeout=15_000)
            except Exception:
                problems.append(f"search.html: no result for {search_term!r}")
        browser.close()
    return problems


if __name__ == "__main__":
    found = check_site(Path(sys.argv[1]))
    print("\n".join(found) or "site OK")
    sys.exit(1 if found else 0)
