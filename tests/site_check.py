"""Check a built HTML site in a real browser (headless Debian Chromium driven by Playwright).

Every page is opened at desktop width (1280 px): images load, links and anchors resolve, nothing is
fetched from another host, no error output shows, one search box, a copy button on every code cell, no
code or output scrolls sideways, the figures' text is legible. Then the navigation is clicked: at phone
width (390 px) the sidebar and the contents open as drawers and lead to other pages and sections, at
desktop width the sidebar toggle collapses the sidebar, a copy button copies its cell, collapsed blocks
open. Used by ``tests/test_docs.py``; also runnable by hand on any build:

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
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MIN_FIGURE_TEXT_PX = 12  # the smallest text of an SVG figure, as displayed (at 390 and 1280 px)
OVERFLOW = "scrolls sideways"  # marks the problems of code that does not fit (see tests/test_docs.py)
WAIT_MS = 5_000  # for a click's effect to show
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
  const visible = e => e.checkVisibility({visibilityProperty: true});
  // code and outputs wider than their box: the lines too long, and how many characters fit
  const canvas = document.createElement('canvas').getContext('2d');
  const overflows = [];
  for (const pre of document.querySelectorAll('div.highlight pre, div.cell_output pre')) {
    if (!visible(pre) || pre.scrollWidth <= pre.clientWidth) continue;
    const style = getComputedStyle(pre);
    canvas.font = `${style.fontSize} ${style.fontFamily}`;
    const inner = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const fit = Math.floor(inner / canvas.measureText('0').width);
    const lines = pre.innerText.split('\\n');
    const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
    const long = lines.filter(line => line.length > fit);
    overflows.push({kind: pre.closest('.cell_output') ? 'output' : 'code', fit,
                    lines: long.length ? long : [longest]});
  }
  const searches = [...document.querySelectorAll('.search-button-field, .search-button')]
      .filter(visible).length;
  const uncopyable = [...document.querySelectorAll('div.cell_input div.highlight')]
      .filter(d => !d.querySelector('button.copybtn')).length;
  return {images, links, ids, errors, traceback: text.includes('Traceback (most recent call last)'),
          title: document.title, overflows, searches, uncopyable};
}"""

# the SVG figures shown: which file (a <picture> may choose by width) and how wide
FIGURES_SCRIPT = """() => [...document.images]
  .filter(img => new URL(img.currentSrc || img.src).pathname.endsWith('.svg')
                 && img.checkVisibility({visibilityProperty: true}))
  .map(img => ({src: img.currentSrc || img.src, width: img.getBoundingClientRect().width}))"""


def figure_problems(page, root: Path, rel: str, width: int) -> list[str]:
    """SVG figures on ``page`` whose smallest text is displayed under MIN_FIGURE_TEXT_PX."""
    problems = []
    for figure in page.evaluate(FIGURES_SCRIPT):
        source = (root / unquote(urlparse(figure["src"]).path).lstrip("/")).read_text()
        px = svg_min_text_px(source, figure["width"])
        if px is not None and px < MIN_FIGURE_TEXT_PX:
            name = figure["src"].rsplit("/", 1)[-1]
            problems.append(f"{rel}: figure {name} shows text {px:.1f} px high at {width} px")
    return problems


def svg_min_text_px(svg: str, displayed_width: float) -> float | None:
    """The smallest font size in an SVG, in CSS pixels once the SVG is displayed ``displayed_width`` wide."""
    import re

    view_box = re.search(r'viewBox="[\d.\s-]*?([\d.]+)\s+[\d.]+"', svg)
    sizes = [float(size) for size in re.findall(r'font-size[=:]\s*"?([\d.]+)', svg)]
    if not view_box or not sizes:
        return None
    return min(sizes) * displayed_width / float(view_box.group(1))


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
        page = browser.new_page(viewport=DESKTOP)
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
            if info["searches"] != 1:
                problems.append(f"{rel}: {info['searches']} search boxes at {DESKTOP['width']} px (want one)")
            if info["uncopyable"]:
                problems.append(f"{rel}: {info['uncopyable']} code cells without a copy button")
            for block in info["overflows"]:
                problems += [
                    f"{rel}: {block['kind']} {OVERFLOW} at {DESKTOP['width']} px: a line of {len(line)} "
                    f"characters where {block['fit']} fit: {line.strip()}"
                    for line in block["lines"]
                ]
            problems += figure_problems(page, root, rel, DESKTOP["width"])
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
        page.close()
        problems += check_navigation(browser, base, root, pages)
        browser.close()
    return problems


def check_clicks(root: Path) -> list[str]:
    """Only the clicking part of :func:`check_site` (seconds instead of a page-by-page pass)."""
    from playwright.sync_api import sync_playwright

    with serve(Path(root)) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return check_navigation(browser, base, Path(root), site_pages(Path(root)))
        finally:
            browser.close()


def _waits_for(page, condition: str, arg=None) -> bool:
    """Whether the JavaScript ``condition`` becomes true within WAIT_MS (no fixed sleeps)."""
    try:
        page.wait_for_function(condition, arg=arg, timeout=WAIT_MS)
        return True
    except Exception:
        return False


IN_VIEW = """(selector) => [...document.querySelectorAll(selector)].some(e => {
  const r = e.getBoundingClientRect();
  return e.checkVisibility({visibilityProperty: true}) && r.width > 0 && r.left >= 0
      && r.right <= window.innerWidth && r.top < window.innerHeight;
})"""


def _contents_problems(page, rel: str, width: int) -> list[str]:
    """The page's contents: a column in view, or one button that opens them as a drawer (Escape shuts)."""
    toggle = page.locator("button.secondary-toggle:visible")
    if toggle.count() == 0 and page.evaluate(IN_VIEW, "#pst-secondary-sidebar a.nav-link[href^='#']"):
        return []  # a column of its own
    if toggle.count() != 1:
        return [f"{rel}: {toggle.count()} visible contents buttons at {width} px (want one)"]
    toggle.click()
    if not _waits_for(page, IN_VIEW, "dialog[open] a.nav-link[href^='#']"):
        return [f"{rel}: the contents button shows no contents at {width} px"]
    page.keyboard.press("Escape")
    if not _waits_for(page, "() => !document.querySelector('dialog[open]')"):
        return [f"{rel}: the contents drawer does not close on Escape at {width} px"]
    return []


def check_navigation(browser, base: str, root: Path, pages: list[str]) -> list[str]:
    """Click what a reader clicks; return the problems. Uses the first notebook page (else the first)."""
    problems: list[str] = []
    start = next((rel for rel in pages if rel.startswith("notebooks/")), pages[0])
    phone, desktop = PHONE["width"], DESKTOP["width"]

    # phone: the sidebar opens as a drawer whose links lead to another page; the contents drawer too
    context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(base + start, wait_until="load")
    searches = page.locator(".search-button-field:visible, .search-button:visible").count()
    if searches != 1:
        problems.append(f"{start}: {searches} search boxes at {phone} px (want one)")
    toggle = page.locator("button.primary-toggle:visible")
    if toggle.count() != 1:
        problems.append(f"{start}: {toggle.count()} visible sidebar buttons at {phone} px (want one)")
    else:
        toggle.click()
        drawer_link = "dialog[open] nav a.reference.internal[href$='.html']"
        if not _waits_for(page, IN_VIEW, drawer_link):
            problems.append(f"{start}: the sidebar button shows no navigation at {phone} px")
        else:
            link = page.locator(drawer_link).filter(visible=True).last
            target = link.get_attribute("href")
            link.click()
            if not _waits_for(page, "(name) => location.pathname.endsWith(name)", target.split("/")[-1]):
                problems.append(f"{start}: the sidebar's link to {target} does not navigate")
    if "index.html" in pages:
        page.goto(base + "index.html", wait_until="load")
        problems += figure_problems(page, root, "index.html", PHONE["width"])
    page.goto(base + start, wait_until="load")
    problems += _contents_problems(page, start, phone)
    context.close()

    # desktop: the sidebar toggle collapses the sidebar and brings it back, the contents open (as a
    # drawer from 1200 to 1679 px, see docs/_static/custom.css); copy buttons copy
    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base.rstrip("/"))
    page = context.new_page()
    page.goto(base + start, wait_until="load")
    shown = """() => {
      const r = document.querySelector('#pst-primary-sidebar')?.getBoundingClientRect();
      return !!r && r.right > 0 && r.width > 0;
    }"""
    toggle = page.locator("button.primary-toggle:visible")
    if toggle.count() != 1 or not _waits_for(page, shown):
        problems.append(f"{start}: no sidebar with one toggle button at {desktop} px")
    else:
        toggle.click()
        if not _waits_for(page, f"() => !({shown})() && !document.querySelector('dialog[open]')"):
            problems.append(f"{start}: the sidebar button does not collapse the sidebar at {desktop} px")
        else:
            toggle.click()
            if not _waits_for(page, shown):
                problems.append(f"{start}: the sidebar button does not bring the sidebar back")
    problems += _contents_problems(page, start, desktop)
    cell = page.locator("div.cell_input div.highlight:has(button.copybtn)").first
    if cell.count():  # cells without a button are reported page by page
        cell.hover()
        cell.locator("button.copybtn").click()
        copied = page.evaluate("navigator.clipboard.readText()")
        if copied.strip() != cell.locator("pre").inner_text().strip():
            problems.append(f"{start}: the copy button copied {copied[:60]!r}, not its cell")
    # collapsed blocks (the environment file, solutions): hidden until their summary is clicked
    for rel in pages:
        if "<details" not in (root / rel).read_text():
            continue
        page.goto(base + rel, wait_until="load")
        for details in page.query_selector_all("details:not([open])"):
            block, summary = details.query_selector("div.highlight"), details.query_selector("summary")
            if not block or not summary:
                continue
            if block.is_visible():
                problems.append(f"{rel}: a collapsed block shows its content")
            summary.click()
            if not _waits_for(page, "(block) => block.checkVisibility()", block):
                problems.append(f"{rel}: a collapsed block does not open on click")
    context.close()
    return problems


if __name__ == "__main__":
    found = check_site(Path(sys.argv[1]))
    print("\n".join(found) or "site OK")
    sys.exit(1 if found else 0)
