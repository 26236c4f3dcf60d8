// The player's story in a real Chromium, against the real gateway and
// services (started by crates/system-tests, tests/system/browser.rs).
//
// The harness plays the game server and the operator: this script asks it on
// stdout, one line per request, and reads its answer on stdin:
//   achieve <customer> <mission code>  ->  achieved <unix ms when AchieveMission returned>
//   stop gift | start gift             ->  ok
// Usage: node e2e/story.mjs --page http://127.0.0.1:PORT --out DIR [--measure N]
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const base = args.page;
const out = args.out ?? ".run/browser";
const measure = Number(args.measure ?? 0);
mkdirSync(out, { recursive: true });

const answers = createInterface({ input: process.stdin });
const pending = [];
answers.on("line", (line) => pending.shift()?.(line));
function ask(request) {
  return new Promise((resolve) => {
    pending.push(resolve);
    process.stdout.write(`${request}\n`);
  });
}

const results = [];
async function check(name, body) {
  const started = Date.now();
  try {
    await body();
    results.push([name, true]);
    console.error(`  ok    ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.push([name, false]);
    console.error(`  FAIL  ${name}: ${error?.stack ?? error}`);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
});
// A phone-sized screen.
const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
context.setDefaultTimeout(15_000);

async function signedIn(player, query = "") {
  const page = await context.newPage();
  const loaded = [];
  page.on("load", () => loaded.push(Date.now()));
  await page.goto(`${base}/${query}`);
  await page.getByLabel("Player id").fill(player);
  await page.getByRole("button", { name: "Sign in (development)" }).click();
  await page.locator("[data-player]").filter({ hasText: player }).waitFor();
  await page.getByText("Live", { exact: true }).waitFor();
  return { page, loads: () => loaded.length };
}

const run = Date.now().toString(36);
const player = `browser-${run}`;

await check("the page is phone-sized and shows the signed-in player's empty page", async () => {
  const { page } = await signedIn(player);
  await page.getByText("No mission achieved yet").waitFor();
  await page.getByText("Golden avatar frame").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  if (overflow) throw new Error("the page is wider than a phone's screen");
  await page.screenshot({ path: `${out}/1-signed-in.png`, fullPage: true });
  await page.close();
});

const { page, loads } = await signedIn(player);

await check("an achieved mission appears without a reload, its reward issued", async () => {
  await ask(`achieve ${player} FIRST_WIN`);
  const mission = page.locator('[data-mission-code="FIRST_WIN"][data-reward-status="Issued"]');
  await mission.waitFor();
  await page.locator('[data-entry-id][data-status="Available"]').waitFor();
  if (loads() !== 1) throw new Error(`the page was loaded ${loads()} times`);
  await page.screenshot({ path: `${out}/2-mission-achieved.png`, fullPage: true });
});

await check("while gift is stopped, the exchange says to try again later, with the wait", async () => {
  await ask("stop gift");
  try {
    await page.getByRole("button", { name: "Exchange" }).click();
    await page.getByRole("button", { name: /Sticker pack/ }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    const text = await alert.innerText();
    if (!/busy right now and your reward is unchanged\. Please try again in (\d+ seconds?|a moment)\./.test(text)) {
      throw new Error(`the message read: ${text}`);
    }
    if (/\b(UNAVAILABLE|14|grpc)\b/i.test(text)) throw new Error(`a raw status leaked: ${text}`);
    await page.locator('[data-entry-id][data-status="Available"]').waitFor();
    await page.screenshot({ path: `${out}/3-gift-stopped.png`, fullPage: true });
  } finally {
    await ask("start gift");
  }
});

await check("an exchanged entry becomes EXCHANGED with its order, live", async () => {
  // The wallet's circuit breaker lets calls through again once gift answers.
  const deadline = Date.now() + 30_000;
  for (;;) {
    await page.getByRole("button", { name: "Exchange" }).click();
    // The gift that uses the reward's 300 points up: the change of a cheaper
    // one would stay in the wallet, the entry AVAILABLE.
    await page.getByRole("button", { name: /Golden avatar frame/ }).click();
    const outcome = await Promise.race([
      page.locator('[data-entry-id][data-status="Exchanged"]').waitFor().then(() => "exchanged"),
      page.getByRole("alert").waitFor().then(() => "refused"),
    ]);
    if (outcome === "exchanged") break;
    if (Date.now() > deadline) throw new Error(`still refused: ${await page.getByRole("alert").innerText()}`);
    await page.waitForTimeout(1000);
  }
  const order = await page.locator('[data-status="Exchanged"] .order code').innerText();
  if (!order.trim()) throw new Error("no gift order shown");
  await page.locator('[data-mission-code="FIRST_WIN"][data-reward-status="Exchanged"]').waitFor();
  await page.screenshot({ path: `${out}/4-exchanged.png`, fullPage: true });
});

await check("a gift bought with points shows under Your gifts, paid from the balance", async () => {
  await ask(`achieve ${player} INVITE_FRIEND`);
  await page.locator('[data-available-points="500 pts"]').waitFor();
  await page.locator('li.product[data-sku="STICKER-PACK"] button').click();
  // The avatar frame's exchange above is one of the player's gifts too.
  const placed = page.locator('[data-exchange-id][data-sku="STICKER-PACK"][data-status="Placed"]');
  await placed.waitFor();
  const order = await placed.locator(".order code").innerText();
  if (!order.trim()) throw new Error("no gift order shown");
  // The change stays in the reward that paid, and the balance says so.
  await page.locator('[data-available-points="400 pts"]').waitFor();
  await page.locator('[data-remaining="400 pts left"]').waitFor();
  await page.screenshot({ path: `${out}/4b-gift-for-points.png`, fullPage: true });
});

await check("another player's page is refused", async () => {
  const other = await context.newPage();
  await other.goto(`${base}/#someone-else-${run}`);
  await other.getByLabel("Player id").fill(player);
  await other.getByRole("button", { name: "Sign in (development)" }).click();
  await other.getByRole("alert").filter({ hasText: "belongs to another player" }).waitFor();
  await other.screenshot({ path: `${out}/5-another-players-page.png`, fullPage: true });
  await other.close();
});

await check("when the token expires the watch ends and the page asks to sign in again", async () => {
  const expiring = await context.newPage();
  await expiring.goto(`${base}/?token_secs=2`);
  await expiring.getByLabel("Player id").fill(`${player}-short`);
  await expiring.getByRole("button", { name: "Sign in (development)" }).click();
  await expiring.getByText("Live", { exact: true }).waitFor();
  await expiring.getByRole("alert").filter({ hasText: "Your session has ended. Please sign in again." }).waitFor({ timeout: 20_000 });
  await expiring.getByLabel("Player id").waitFor();
  await expiring.screenshot({ path: `${out}/6-signed-out.png`, fullPage: true });
  await expiring.close();
});

if (measure > 0) {
  // Time from AchieveMission's answer to the page showing the mission, in the browser.
  const codes = ["FIRST_LOGIN", "FIRST_WIN", "INVITE_FRIEND", "WEEKLY_QUEST", "EVENT_CHAMPION"];
  const latencies = [];
  for (let n = 0; n < measure; ) {
    const { page: timed } = await signedIn(`latency-${run}-${n}`);
    for (const code of codes) {
      if (n >= measure) break;
      await timed.evaluate((code) => {
        window.__seen = new Promise((resolve) => {
          const selector = `[data-mission-code="${code}"]`;
          const observer = new MutationObserver(() => {
            if (document.querySelector(selector)) {
              observer.disconnect();
              resolve(Date.now());
            }
          });
          observer.observe(document.getElementById("app"), { childList: true, subtree: true });
        });
      }, code);
      const achieved = Number((await ask(`achieve latency-${run}-${Math.floor(n / 5) * 5} ${code}`)).split(" ")[1]);
      const seen = await timed.evaluate(() => window.__seen);
      latencies.push(seen - achieved);
      n += 1;
    }
    await timed.close();
  }
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)];
  console.error(`  measured ${latencies.length} missions: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${latencies.at(-1)} ms`);
  process.stdout.write(`latency ${JSON.stringify({ n: latencies.length, p50: at(0.5), p99: at(0.99), max: latencies.at(-1) })}\n`);
}

await browser.close();
const failed = results.filter(([, ok]) => !ok).length;
console.error(`${results.length - failed} passed, ${failed} failed; screenshots in ${out}`);
process.stdout.write(`done ${results.length - failed} passed, ${failed} failed\n`);
process.exit(failed ? 1 : 0);
