// The player's page: sign in, then the page live from WatchMyPage, the
// exchange of a wallet entry for a gift, and the exchange of points for a
// gift. Rules of what is shown live in view.ts, words for errors in errors.ts.
import "./style.css";
import { devSignIn, keep, oidcReturn, oidcSignIn, settings, stored, type Session, type Settings } from "./auth.js";
import { clients, type Clients } from "./client.js";
import { definitelyRefused, explain, type Call } from "./errors.js";
import { render, renderSignIn } from "./render.js";
import { attemptFor, points, view, type State } from "./view.js";
import { ExchangeStatus } from "./gen/game/wallet/v1/wallet_pb.js";

declare const __DEV_BUILD__: boolean;

const root = document.getElementById("app") as HTMLElement;
let config: Settings = { signIn: "none" };
let state: State | undefined;
let api: Clients | undefined;
let watching: AbortController | undefined;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function draw() {
  if (state) render(root, view(state));
}

function signIn(message?: string) {
  watching?.abort();
  keep(undefined);
  state = undefined;
  renderSignIn(root, {
    development: __DEV_BUILD__ && config.signIn === "development",
    oidc: config.signIn === "oidc",
    message,
  });
}

function fail(reason: unknown, what: Call) {
  const explained = explain(reason, what);
  if (explained.consequence === "sign-in") return signIn(explained.text);
  if (state) {
    state.notice = { kind: "error", text: explained.text };
    draw();
  }
}

function open(session: Session) {
  keep(session);
  api = clients(() => session.token);
  // A link to a player's page (`/#player-7`) opens theirs; the services
  // refuse it to anyone but that player.
  const customerId = decodeURIComponent(location.hash.slice(1)) || session.customerId;
  state = { customerId, definitions: [], products: [], link: "connecting" };
  draw();
  void catalogues();
  void watch(customerId);
}

/** The catalogues; `quietly` keeps what is shown when they cannot be read again. */
async function catalogues(quietly = false) {
  if (!api || !state) return;
  try {
    const [definitions, products] = await Promise.all([api.missions.listMissionDefinitions({}), api.gifts.listProducts({})]);
    state.definitions = definitions.definitions;
    state.products = products.products;
    draw();
  } catch (reason) {
    if (!quietly) fail(reason, "page");
  }
}

/** Follows the page as the services change it; reconnects after a break, never polls. */
async function watch(customerId: string) {
  const controller = new AbortController();
  watching?.abort();
  watching = controller;
  let backoff = 500;
  while (!controller.signal.aborted && api && state) {
    try {
      for await (const update of api.pages.watchMyPage({ customerId }, { signal: controller.signal })) {
        state.page = update.myPage;
        state.link = "live";
        backoff = 500;
        draw();
      }
    } catch (reason) {
      if (controller.signal.aborted) return;
      const explained = explain(reason, "page");
      if (explained.consequence === "sign-in") return signIn(explained.text);
      if (explained.consequence === "stop") {
        state.notice = { kind: "error", text: explained.text };
        state.link = "closed";
        return draw();
      }
    }
    if (controller.signal.aborted || !state) return;
    state.link = "reconnecting";
    draw();
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 10_000);
  }
}

async function exchange(entryId: string, productSku: string) {
  if (!api || !state) return;
  state.exchanging = entryId;
  state.choosing = undefined;
  state.notice = undefined;
  draw();
  try {
    const { entry } = await api.wallet.exchangeReward({ customerId: state.customerId, entryId, productSku });
    const gift = state.products.find((p) => p.sku === productSku)?.name ?? productSku;
    state.notice = { kind: "info", text: `Exchanged for ${gift}. Your order: ${entry?.giftOrderId ?? "placed"}.` };
  } catch (reason) {
    fail(reason, "exchange");
  } finally {
    if (state) state.exchanging = undefined;
    draw();
  }
  // Stock changed, ours or someone else's; the exchange's own message stays.
  void catalogues(true);
}

/** A new idempotency key: 128 random bits (getRandomValues works on plain http too). */
function freshKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Spends points of the balance on `productSku`; a retry after an unknown outcome reuses the key. */
async function buy(productSku: string) {
  if (!api || !state) return;
  const attempt = attemptFor(state.attempt, productSku, freshKey);
  state.attempt = attempt;
  state.buying = productSku;
  state.choosing = undefined;
  state.notice = undefined;
  draw();
  try {
    const { exchange } = await api.wallet.exchange({ customerId: state.customerId, productSku, idempotencyKey: attempt.key });
    if (!state) return;
    state.attempt = undefined;
    const gift = state.products.find((p) => p.sku === productSku)?.name ?? productSku;
    if (exchange?.status === ExchangeStatus.RELEASED) {
      state.notice = { kind: "error", text: `${gift} could not be ordered. Your points are unchanged.` };
    } else if (exchange?.status === ExchangeStatus.PENDING) {
      state.notice = { kind: "info", text: `Your order of ${gift} is on its way.` };
    } else {
      const paid = exchange ? `${points(exchange.pricePoints)} for ` : "";
      state.notice = { kind: "info", text: `Exchanged ${paid}${gift}. Your order: ${exchange?.giftOrderId || "placed"}.` };
    }
  } catch (reason) {
    if (state && definitelyRefused(reason)) state.attempt = undefined;
    fail(reason, "points");
  } finally {
    if (state) state.buying = undefined;
    draw();
  }
  void catalogues(true);
}

async function play(missionCode: string) {
  if (!api || !state) return;
  try {
    await api.missions.achieveMission({ customerId: state.customerId, missionCode });
  } catch (reason) {
    fail(reason, "match");
  }
}

root.addEventListener("click", (event) => {
  const button = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-action]");
  if (!button || !state) return;
  const { action, entry, sku, mission } = button.dataset;
  if (action === "sign-out") return signIn();
  if (action === "choose" && entry) {
    state.choosing = entry;
    state.notice = undefined;
  }
  if (action === "cancel") state.choosing = undefined;
  if (action === "exchange" && entry && sku) return void exchange(entry, sku);
  if (action === "buy" && sku) return void buy(sku);
  if (__DEV_BUILD__ && action === "play" && mission) return void play(mission);
  draw();
});

root.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    if (config.signIn === "oidc") return await oidcSignIn(config.oidc);
    if (__DEV_BUILD__ && config.signIn === "development") {
      const player = new FormData(event.target as HTMLFormElement).get("player")?.toString().trim() ?? "";
      // `?token_secs=N`: a short-lived token, to see what happens when it expires.
      const lifetime = Number(new URLSearchParams(location.search).get("token_secs")) || undefined;
      open(await devSignIn(player, lifetime));
    }
  } catch (reason) {
    signIn(reason instanceof Error ? reason.message : String(reason));
  }
});

async function start() {
  try {
    config = await settings();
  } catch {
    root.replaceChildren("The page cannot load right now. Please try again later.");
    return;
  }
  let session = stored();
  if (config.signIn === "oidc") session = (await oidcReturn(config.oidc).catch(() => undefined)) ?? session;
  if (session) open(session);
  else signIn();
}

void start();
