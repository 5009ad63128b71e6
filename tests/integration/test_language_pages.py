"""The ledger's own messages, the demo's story and both HTML pages in the reader's language."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ledger import i18n
from ledger.errors import Refused
from tests.conftest import run_cli
from tests.integration.test_disputes import clash, t
from tests.integration.test_report import CHROMIUM, IN_CI, chromium, probed

CJK = re.compile(r"[\u4e00-\u9fff]")
HAS_CJK_FONT = shutil.which("fc-list") is not None and "Noto Sans CJK SC" in subprocess.run(
    ["fc-list"], capture_output=True, text=True, check=False).stdout
needs_browser = pytest.mark.skipif((CHROMIUM is None or not HAS_CJK_FONT) and not IN_CI,
                                   reason="chromium or the Noto Sans CJK font is not installed")


@pytest.fixture(autouse=True)
def english_afterwards(monkeypatch):
    monkeypatch.setenv("LEADLEDGER_LANG", "en")
    yield
    i18n.activate("en")


@pytest.fixture
def zh(monkeypatch):
    """Chinese for the Python API and for the command line (which reads the environment)."""
    monkeypatch.setenv("LEADLEDGER_LANG", "zh_CN.UTF-8")
    i18n.activate()


def over_the_limit(world) -> Refused:
    world.claim("alice", "L-1", at=t(3))
    world.claim("alice", "L-2", at=t(3, 10))
    with pytest.raises(Refused) as caught:
        world.claim("alice", "L-3", at=t(3, 11))
    return caught.value


@pytest.mark.parametrize("lang, message", [
    ("en", "alice already holds 2 leads of pool east (claim_limit 2, rules v1)"),
    ("zh", "alice 已持有公海池 east 的 2 条线索（保有量上限 claim_limit 2，规则 v1）"),
])
def test_a_refusal_speaks_the_readers_language_and_keeps_its_code_and_details(world, lang, message):
    i18n.activate(lang)
    refused = over_the_limit(world)
    assert refused.code == "claim_limit_reached" and refused.message == message
    assert refused.details["lead"] == "L-3" and refused.details["refusal_position"] > 0
    assert refused.to_dict()["code"] == "claim_limit_reached"
    # the recorded refusal stays in English, whoever read it
    stored = world.store.read_log(after=refused.details["refusal_position"] - 1, limit=1)[0].event
    assert stored.message == "alice already holds 2 leads of pool east (claim_limit 2, rules v1)"


def test_a_stored_refusal_is_shown_in_chinese_by_the_cli(world, store_url, zh):
    clash(world)  # bob's claim of L-1 was refused and recorded, in English
    world.open_dispute("bob", "L-1", "I met them first", at=t(4))
    shown = run_cli(store_url, "dispute", "show", "L-1-D1")
    assert shown.code == 0, shown
    refused = [a for a in shown.json["evidence"]["attempts"] if not a["accepted"]]
    assert refused and refused[0]["reason"] == "lead_owned"  # the code never changes
    assert refused[0]["message"].startswith("线索 L-1 已归属于 alice（自事件 #"), refused[0]["message"]
    run = run_cli(store_url, "claim", "L-1", actor="bob")
    assert run.code == 1 and run.json["error"]["code"] == "lead_owned" and CJK.search(run.json["error"]["message"])


def test_the_demo_tells_its_story_in_chinese(store_url, zh):
    run = run_cli(store_url, "demo")
    assert run.code == 0, run
    story = run.json["story"]
    assert len(story) >= 6 and all(line.startswith("第 ") and CJK.search(line) for line in story), story
    assert any("保有量上限" in line for line in story)  # alice's refusal, made again in Chinese


# Injected into a copy of a page: every character of the page's text drawn in the page's font
# beside the ".notdef" box of a code point no font has; a character drawn like it is a box.
PROBE = """<script>
addEventListener('load', () => {
  const font = getComputedStyle(document.body).fontFamily;
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 40;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = ch => { ctx.clearRect(0, 0, 40, 40); ctx.font = '28px ' + font; ctx.fillText(ch, 4, 32);
                       return ctx.getImageData(0, 0, 40, 40).data.join(','); };
  const box = draw(String.fromCodePoint(0x10FFFD));
  const text = document.body.innerText;
  const chars = [...new Set([...text].filter(c => c.trim()))];
  const boxes = chars.filter(c => draw(c) === box);
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({lang: document.documentElement.lang, font, text, boxes,
                                    noto: document.fonts.check('16px "Noto Sans CJK SC"', '公海')});
  document.body.appendChild(pre);
});
</script>"""


def look_at(page, tmp_path) -> dict:
    seen = probed(page, PROBE, tmp_path)
    png = tmp_path / "page.png"
    shot = chromium(tmp_path, f"--screenshot={png}", "--window-size=1100,1400", page.as_uri())
    assert shot.returncode == 0, shot.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return seen


def check_chinese_page(page, tmp_path, *phrases: str) -> None:
    html = page.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html and '"Noto Sans CJK SC"' in html
    seen = look_at(page, tmp_path)
    assert seen["lang"] == "zh-CN" and "Noto Sans CJK SC" in seen["font"] and seen["noto"]
    for phrase in phrases:
        assert phrase in html and phrase in seen["text"], phrase
    assert seen["boxes"] == [], seen["boxes"]  # no character of the page is drawn as a box


@pytest.fixture
def dispute_page(world, store_url, tmp_path, zh):
    clash(world)
    world.open_dispute("bob", "L-1", "我上周已经见过客户", at=t(4))
    world.resolve_dispute("audrey", "L-1-D1", award="bob", rationale="bob 先拜访", at=t(5))
    path = tmp_path / "evidence.html"
    assert run_cli(store_url, "dispute", "show", "L-1-D1", "--html", str(path)).code == 0
    return path


@needs_browser
def test_the_dispute_page_in_chinese_draws_every_character(dispute_page, tmp_path):
    check_chinese_page(dispute_page, tmp_path, "争议 L-1-D1", "归属时间线", "我上周已经见过客户")


def test_the_dispute_pages_tooltips_follow_the_language(dispute_page):
    """The `<title>` of each mark of the timeline (a holding, an attempt, a dispute event) is in
    Chinese; event types, ids and times stay as they are."""
    tips = re.findall(r"<title>(.*?)</title>", dispute_page.read_text(encoding="utf-8"))
    assert len(tips) >= 4 and all(CJK.search(tip) or "，" in tip for tip in tips), tips
    assert any(tip.startswith("alice 自 ") and "持有 L-1" in tip for tip in tips), tips
    assert any("ClaimRefused" in tip and "线索 L-1 已归属于 alice" in tip for tip in tips), tips
    english = re.compile(r" (owned|owns|held duplicate lead|holds duplicate lead|follow-up on) | to now")
    assert not any(english.search(tip) for tip in tips), tips


def test_the_dispute_page_in_english_stays_english(world, store_url, tmp_path):
    clash(world)
    world.open_dispute("bob", "L-1", "met them first", at=t(4))
    path = tmp_path / "evidence.html"
    assert run_cli(store_url, "dispute", "show", "L-1-D1", "--html", str(path)).code == 0
    html = path.read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "Ownership timeline" in html and not CJK.search(html)


@needs_browser
def test_the_period_page_in_chinese_draws_every_character(world, store_url, tmp_path, zh):
    clash(world)
    path = tmp_path / "period.html"
    run = run_cli(store_url, "report", "--from", "2026-03-01", "--to", "2026-04-01",
                  "--html", str(path))
    assert run.code == 0, run
    assert "from" in run.json  # machine output keeps its field names
    check_chinese_page(path, tmp_path, "期间报告", "公海池 east", "销售 alice", "期初持有")


def test_the_dispute_events_table_and_the_period_bars_speak_chinese(dispute_page, world, store_url, tmp_path):
    """The ruling's outcome and the reason the ledger gave it, and the bars' tooltips, are words,
    not the stored English or field names."""
    html = dispute_page.read_text(encoding="utf-8")
    cells = re.findall(r"<td>(.*?)</td>", html)
    assert "awarded" not in cells and not any(c.startswith("awarded by dispute") for c in cells), cells
    path = tmp_path / "period.html"
    assert run_cli(store_url, "report", "--from", "2026-03-01", "--to", "2026-04-01", "--html", str(path)).code == 0
    tips = re.findall(r"<rect class='bar'[^>]*><title>(.*?)</title>", path.read_text(encoding="utf-8"))
    assert tips and all(CJK.search(tip) for tip in tips), tips
