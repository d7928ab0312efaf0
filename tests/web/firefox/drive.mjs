// Debian's firefox-esr, driven over WebDriver BiDi by puppeteer-core (which downloads no browser),
// for the Python tests (tests/web/firefox.py). One JSON command per stdin line, one JSON answer
// per stdout line: {"id", "ok", "value"} or {"id", "ok": false, "error"}.
//   {"id": 1, "op": "open", "url": "...", "width": 1280, "height": 720}   -> page number
//   {"id": 2, "op": "eval", "page": 0, "js": "async () => ..."}           -> its JSON value
//   {"id": 3, "op": "click", "page": 0, "selector": "#join"}
//   {"id": 4, "op": "screenshot", "page": 0, "path": "/tmp/x.png"}
//   {"id": 5, "op": "closepage", "page": 0}
// The browser closes when stdin ends.
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const executablePath = process.env.HALLBRIDGE_FIREFOX || "/usr/bin/firefox-esr";
const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath,
  headless: true,
  protocol: "webDriverBiDi",
  extraPrefsFirefox: {
    // fake camera and microphone (a picture and a tone), no permission prompt
    "media.navigator.streams.fake": true,
    "media.navigator.permission.disabled": true,
    // the bridge is on 127.0.0.1: loopback ICE candidates, and no mDNS names for them
    "media.peerconnection.ice.loopback": true,
    "media.peerconnection.ice.force_interface": "lo",
    "media.peerconnection.ice.obfuscate_host_addresses": false,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": false,
    // nothing but the test's own traffic
    "network.dns.disableIPv6": true,
    "app.update.enabled": false,
    "browser.safebrowsing.malware.enabled": false,
    "browser.safebrowsing.phishing.enabled": false,
    "datareporting.policy.dataSubmissionEnabled": false,
    "toolkit.telemetry.enabled": false,
    "network.captive-portal-service.enabled": false,
    "network.connectivity-service.enabled": false,
  },
});
const pages = [];
const version = await browser.version();
process.stdout.write(JSON.stringify({ id: 0, ok: true, value: version }) + "\n");

async function run(cmd) {
  switch (cmd.op) {
    case "open": {
      const page = await browser.newPage();
      await page.setViewport({ width: cmd.width || 1280, height: cmd.height || 720 });
      await page.goto(cmd.url);
      pages.push(page);
      return pages.length - 1;
    }
    case "eval":
      return await pages[cmd.page].evaluate(`(${cmd.js})()`);
    case "click":
      await pages[cmd.page].click(cmd.selector);
      return null;
    case "screenshot":
      await pages[cmd.page].screenshot({ path: cmd.path });
      return cmd.path;
    case "closepage":
      await pages[cmd.page].close();
      return null;
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  try {
    const value = await run(cmd);
    process.stdout.write(JSON.stringify({ id: cmd.id, ok: true, value: value ?? null }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ id: cmd.id, ok: false, error: String(err) }) + "\n");
  }
}
await browser.close();
