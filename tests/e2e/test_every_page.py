"""Every page opens in a real browser, finishes running, shows no exception, has no serious
accessibility violation (axe-core, the whole page, navigation included), is captured as a
full-page screenshot, and fits a 390-pixel phone without content pushed off the side."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from streamlit_page import goto, screenshot

from ui.navigation import PAGES

URLS = [("home", "")] + [(p.url_path, p.url_path) for p in PAGES]


@pytest.mark.parametrize(("name", "url_path"), URLS, ids=[n for n, _ in URLS])
def test_page_renders_without_errors(page, base_url: str, name: str, url_path: str) -> None:
    goto(page, base_url, url_path)
    assert page.locator("h1").count() >= 1, "every page starts with a title"
    screenshot(page, name)
    violations = Axe().run(page).response["violations"]
    serious = [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in violations
        if v["impact"] in {"serious", "critical"}
    ]
    assert not serious, serious
    # A phone loads the page at its own width (Streamlit's tables keep their width on a resize).
    page.set_viewport_size({"width": 390, "height": 844})
    goto(page, base_url, url_path)
    try:
        page.wait_for_function(f"() => ({CUT_OFF})().length === 0", timeout=15_000)
    except PlaywrightTimeout:
        raise AssertionError(f"cut off at 390 px: {page.evaluate(CUT_OFF)}") from None


# What sticks out past the right edge of a phone screen: the page itself scrolling sideways, or an
# element whose box ends past the edge with no scrolling box of its own around it (a formula or
# a table that scrolls inside its own box is fine; text clipped by its container is not).
CUT_OFF = """() => {
  const edge = window.innerWidth + 1, main = document.querySelector('[data-testid=stMain]');
  const out = [];
  if (document.scrollingElement.scrollWidth > edge) out.push('the page scrolls sideways');
  if (main.scrollWidth > edge) out.push('the main block scrolls sideways');
  for (const e of main.querySelectorAll('*')) {
    const box = e.getBoundingClientRect();
    if (box.right <= edge || box.width === 0 || e.tagName === 'INPUT') continue;
    if (e.closest('.katex-mathml')) continue;  // MathML for screen readers, never drawn
    let a = e.parentElement, scrolls = false;
    for (; a && a !== main; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if ((ox === 'auto' || ox === 'scroll') && a.getBoundingClientRect().right <= edge) {
        scrolls = true;
        break;
      }
    }
    if (!scrolls && e.parentElement.getBoundingClientRect().right <= edge)
      out.push(`${e.getAttribute('data-testid') || e.tagName} ends at ${Math.round(box.right)}`);
  }
  return out;
}"""
