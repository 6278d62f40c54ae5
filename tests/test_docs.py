"""The docs site: a strict, clean build, checked page by page in Chromium.

The build executes notebook 2 afresh (the site's execution path works: a kernel runs a notebook that
imports ``helpers``, trains nothing and draws figures; it is the cheapest notebook that does all of
that) and renders the others from their stored outputs, which nbval re-executes and compares in the
same test run: executing more notebooks in the build would lengthen the suite's longest part and
check nothing more.
"""

import html
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import site_check
from site_check import CHROMIUM, OVERFLOW, check_clicks, check_site, site_pages

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (ROOT / "docs" / "notebooks").glob("[0-9][0-9]_*.ipynb"))
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (.ci/run installs it)"
)


def sphinx_build(
    source: Path, out: Path, *extra: str, render_stored: str = ""
) -> subprocess.CompletedProcess:
    """Run a strict Sphinx build; ``render_stored`` lists notebooks to render without executing them."""
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        *extra,
        str(source),
        str(out),
    ]
    env = os.environ | {"DOCS_RENDER_STORED": render_stored}  # read by docs/conf.py
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)


EXECUTED = ("02_dataset",)  # executed by the build (the cheapest notebook); the rest are checked by nbval


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site, built strictly from scratch; notebook 2 executed afresh by the build."""
    out = tmp_path_factory.mktemp("site") / "html"
    doctrees = out.parent / "doctrees"
    stored = ",".join(f"notebooks/{name}.ipynb" for name in NOTEBOOKS if name not in EXECUTED)
    result = sphinx_build(
        ROOT / "docs", out, "-d", str(doctrees), "-D", "nb_execution_mode=force", render_stored=stored
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stderr[-5000:]}"
    return out


def test_build_has_every_page(site):
    pages = set(site_pages(site))
    expected = {"index.html", "api.html", "environment.html", "search.html"}
    expected |= {f"notebooks/{name}.html" for name in NOTEBOOKS}
    assert expected <= pages


def test_the_build_executed_notebook_2_and_rendered_the_rest(site):
    env = pickle.loads((site.parent / "doctrees" / "environment.pickle").read_bytes())
    runs = {doc.split("/")[-1]: data.get("exec_data") for doc, data in env.nb_metadata.items()}
    executed = {name: run for name, run in runs.items() if run}
    assert set(executed) == set(EXECUTED)
    assert all(run["succeeded"] and run["method"] == "force" for run in executed.values())


def test_notebook_pages_show_fresh_outputs_and_offer_the_ipynb(site):
    for name in NOTEBOOKS:
        html = (site / "notebooks" / f"{name}.html").read_text()
        assert f"_sources/notebooks/{name}.ipynb" in html, f"{name}: no .ipynb download link"
        assert (site / "_sources" / "notebooks" / f"{name}.ipynb").is_file()
        assert "cell_output" in html and "<img" in html, f"{name}: no executed outputs or figures"
    assert "brainstate 0.5.4" in (site / "notebooks" / "02_dataset.html").read_text()  # printed afresh


def test_api_reference_is_generated_from_docstrings(site):
    html = (site / "api.html").read_text()
    for name in (
        "helpers.model.SNN",
        "helpers.synthetic.poisson_dataset",
        "helpers.training.fit",
        "helpers.plotting.plot_loss",
    ):
        assert f'id="{name}"' in html, f"{name} missing from the API page"


def test_math_is_served_locally(site):
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert "cdn.jsdelivr" not in (site / "notebooks" / "01_network.html").read_text()


@pytest.fixture(scope="session")
def browser_problems(site) -> list[str]:
    """What the browser check finds on the site (one pass over every page, then the clicks)."""
    return check_site(site, search_term="surrogate")


@needs_chromium
def test_every_page_in_a_browser(browser_problems):
    """Pages load whole and offline, navigation works at 390 px and 1280 px, copy buttons copy, ..."""
    assert [problem for problem in browser_problems if OVERFLOW not in problem] == []


@needs_chromium
def test_no_code_or_output_scrolls_sideways_at_1280_px(browser_problems):
    assert [problem for problem in browser_problems if OVERFLOW in problem] == []


def test_api_page_shows_real_signatures(site):
    """brainstate's metaclass hides SNN's __init__: conf.py shows its real signature, not *args, **kwargs."""
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", (site / "api.html").read_text())))
    assert "helpers.model.SNN(n_inputs=100, n_hidden=4, n_outputs=2, *, tau_syn=" in text
    assert "(*args, **kwargs)" not in text
    assert "Return type: Any" not in text
    assert "n_hidden (int)" in text  # the constructor's annotations describe its parameters


def test_environment_file_is_collapsed(site):
    page = (site / "environment.html").read_text()
    details = re.search(r"<details[^>]*>(.*?)</details>", page, re.S)
    assert details and " open" not in details.group(0).split(">", 1)[0], "the YAML is not collapsed"
    assert "brainstate" in details.group(1) and "environment.yml" in details.group(1)


@needs_chromium
def test_the_browser_check_catches_broken_things(tmp_path, monkeypatch):
    """The checker itself, on a page with one of each problem (and no navigation to click)."""
    monkeypatch.setattr(site_check, "WAIT_MS", 1_000)  # each problem waits this long for nothing
    (tmp_path / "tiny.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 100">'
        '<text y="50" font-size="12">x</text></svg>'
    )
    (tmp_path / "index.html").write_text(
        '<html><body><img src="missing.png"><a href="nowhere.html">x</a><a href="#no-such-anchor">y</a>'
        '<div class="cell_output"><div class="output error">boom</div></div>'
        "<pre>Traceback (most recent call last):</pre>"
        '<button class="search-button-field">Search</button><button class="search-button">S</button>'
        f'<div class="cell_input"><div class="highlight"><pre>{"x" * 200}</pre></div></div>'
        '<details><summary onclick="event.preventDefault()">file</summary>'
        '<div class="highlight"><pre>stays shut</pre></div></details>'
        '<img src="tiny.svg" style="width: 300px"></body></html>'
    )
    problems = "\n".join(check_site(tmp_path))
    assert "broken image" in problems and "missing.png" in problems
    assert "broken link to nowhere.html" in problems
    assert "broken anchor index.html#no-such-anchor" in problems
    assert "shows an error output" in problems
    assert "raw traceback" in problems
    assert "2 search boxes at 1280 px" in problems
    assert "1 code cells without a copy button" in problems
    assert f"code {OVERFLOW} at 1280 px: a line of 200 characters" in problems
    assert "0 visible sidebar buttons at 390 px" in problems
    assert "a collapsed block does not open on click" in problems
    assert "figure tiny.svg shows text 3.6 px high at 1280 px" in problems
    assert "figure tiny.svg shows text 3.6 px high at 390 px" in problems


@needs_chromium
def test_the_browser_check_clicks_the_navigation(site, tmp_path, monkeypatch):
    """The theme bug this site had: a hidden top bar's toggles before the visible ones took their clicks."""
    monkeypatch.setattr(site_check, "WAIT_MS", 1_000)  # each problem waits this long for nothing
    broken = tmp_path / "html"
    shutil.copytree(site, broken)
    page = broken / "notebooks" / f"{NOTEBOOKS[0]}.html"
    hidden_toggles = (
        '<header style="display: none"><button class="sidebar-toggle primary-toggle"></button>'
        '<button class="sidebar-toggle secondary-toggle"></button></header>'
    )
    page.write_text(
        page.read_text().replace(
            '<div class="bd-container">', hidden_toggles + '<div class="bd-container">', 1
        )
    )
    problems = "\n".join(check_clicks(broken))
    assert "the sidebar button shows no navigation at 390 px" in problems
    assert "the contents button shows no contents at 390 px" in problems
    assert "does not collapse the sidebar at 1280 px" in problems
    assert "the contents button shows no contents at 1280 px" in problems


def test_a_broken_cross_reference_fails_the_strict_build(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(ROOT / "docs" / "conf.py", source / "conf.py")
    (source / "_static").mkdir()
    (source / "index.md").write_text("# Home\n\nSee [the missing page](missing.md) and {doc}`nowhere`.\n")
    result = sphinx_build(source, tmp_path / "out")
    assert result.returncode != 0
    assert "missing.md" in result.stderr and "nowhere" in result.stderr
