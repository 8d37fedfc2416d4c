"""GET /threatnet/status: the read-only HTML page (current threats newest first and
filterable, threats per minute as an SVG plot, agents and their report counts,
responders' health), hostile comments escaped; and the page as headless Chromium
(Debian's `chromium`) renders it, screenshot included."""
import os
import shutil
import subprocess
import tempfile
import time

import supybot.schedule as schedule
from pngread import pixels, read_png
from supybot.test import timeFastForward
from test_cache_http import HttpTestCase

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">&amp;'
BAR = (0xd9, 0x48, 0x0f)  # status.BAR


class PageCase(HttpTestCase):
    """Threats from alice over four minutes, and a hostile comment from bob."""

    def setUp(self):
        super().setUp()
        self.join("bob", "+v")
        self.hear("45.0.0.1 ssh brute force")
        for minute in range(1, 4):  # threats in several minutes: a plot with bars
            timeFastForward(60)
            for i in range(minute):
                self.hear(f"45.0.{minute}.{i} scan")
        self.hear(f"45.0.9.9 {XSS}", nick="bob")
        self.idle()

    def page(self, query=""):
        answer = self.get("/status" + query)
        self.assertEqual(answer.status, 200, answer.body)
        self.assertEqual(answer.headers["Content-Type"], "text/html; charset=utf-8")
        return answer


class StatusPageTestCase(PageCase):
    def test_the_page(self):
        answer = self.page()
        policy = answer.headers["Content-Security-Policy"]
        self.assertIn("default-src 'none'", policy)
        self.assertNotIn("script-src", policy)
        text = answer.body.decode()
        self.assertNotIn("<script", text)
        self.assertNotIn("src=x", text.replace("src=x onerror", "").replace("&lt;img src=x", ""))
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x "
                      "onerror=&quot;alert(2)&quot;&gt;&amp;amp;", text)
        # newest first: bob's, then the minute-3 ones, ..., the first last
        self.assertLess(text.index("45.0.9.9"), text.index("45.0.3.0"))
        self.assertLess(text.index("45.0.3.0"), text.index("45.0.1.0"))
        self.assertLess(text.index("45.0.1.0"), text.index("45.0.0.1"))
        self.assertIn("Current threats (8)", text)
        self.assertIn("Threats kept per minute, last hour (8 in all)", text)
        self.assertEqual(text.count('fill="#d9480f"'), 4)  # four minutes with threats
        self.assertRegex(text, r"<td>alice</td><td class=\"num\">7</td><td class=\"num\">7</td>")
        self.assertRegex(text, r"<td>bob</td><td class=\"num\">1</td><td class=\"num\">1</td>")
        self.assertRegex(text, r"<td>#test</td><td>http</td><td class=\"num\">8</td>"
                               r"<td class=\"num\">0</td><td class=\"ok\">ok</td>")
        self.assertNotIn("http://", text.replace('xmlns="http://www.w3.org/2000/svg"', ""))

    def test_the_filter(self):
        text = self.page("?q=BRUTE").body.decode()
        self.assertIn("Current threats (1 of 8)", text)
        self.assertIn("45.0.0.1", text)
        self.assertNotIn("45.0.3.0", text)
        self.assertIn('value="BRUTE"', text)
        text = self.page("?q=%22%3E%3Cscript%3E").body.decode()  # the query is escaped too
        self.assertIn('value="&quot;&gt;&lt;script&gt;"', text)
        self.assertNotIn("<script", text)
        self.assertEqual(self.request("HEAD", "/threatnet/status").body, b"")
        self.assertEqual(self.request("POST", "/threatnet/status", b"").status, 405)

    def test_only_allowed_clients(self):
        self.assertEqual(self.get("/status", client="192.0.2.1").status, 403)


class ChromiumTestCase(PageCase):
    """The page in a real browser: headless Chromium loads it from the real server."""

    def setUp(self):
        super().setUp()
        self.browser = shutil.which("chromium")
        self.assertIsNotNone(self.browser, "chromium is missing: make setup installs it")
        self.tmp = tempfile.mkdtemp(prefix="threatnet-chromium-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def chromium(self, *args):
        """Run headless Chromium on the status page, serving its requests (they need the
        main loop) until it exits; its stdout."""
        server = self.cb._http.server
        url = f"http://127.0.0.1:{server.port}/threatnet/status"
        command = [self.browser, "--headless", "--no-sandbox", "--disable-gpu",
                   "--disable-quic", "--no-first-run", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                   "--hide-scrollbars", f"--user-data-dir={self.tmp}/profile", *args, url]
        with open(os.path.join(self.tmp, "out"), "w+b") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL,
                                       stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                schedule.run()
                time.sleep(0.01)
            if process.poll() is None:
                process.kill()
            self.assertEqual(process.wait(), 0)
            out.seek(0)
            return out.read().decode()

    def test_the_dom(self):
        dom = self.chromium("--dump-dom")
        self.assertIn("<h1>ThreatNet status</h1>", dom)
        self.assertIn("45.0.9.9", dom)
        self.assertNotIn("<script", dom)  # the hostile comment stayed text
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", dom)
        self.assertEqual(dom.count("<rect"), 4)

    def test_the_screenshot(self):
        shot = os.path.join(self.tmp, "status.png")
        self.chromium(f"--screenshot={shot}", "--window-size=1280,900")
        with open(shot, "rb") as f:
            width, height, rows = read_png(f.read())
        self.assertEqual((width, height), (1280, 900))
        bpp = len(rows[0]) // width
        colours = {}
        for pixel in pixels(rows, bpp):
            colours[pixel] = colours.get(pixel, 0) + 1
        self.assertGreater(len(colours), 20)  # not blank
        self.assertGreater(colours.get(BAR, 0), 500)  # the plot's bars are drawn
        self.assertGreater(colours.get((0x1f, 0x29, 0x33), 0), 20000)  # the header
        if os.environ.get("THREATNET_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["THREATNET_KEEP_SCREENSHOT"])
