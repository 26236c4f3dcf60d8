// Draws a View into the page. Text goes in as text nodes, never as HTML.
import type { EntryView, ExchangeView, ProductView, View } from "./view.js";

declare const __DEV_BUILD__: boolean;

type Child = Node | string | false | undefined;

export function h(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === true) element.setAttribute(name, "");
    else if (typeof value === "string") element.setAttribute(name, value);
  }
  for (const child of children) if (child) element.append(child);
  return element;
}

function notice(view: View) {
  if (!view.notice) return undefined;
  return h("p", { class: `notice ${view.notice.kind}`, role: view.notice.kind === "error" ? "alert" : "status" }, view.notice.text);
}

function entry(e: EntryView) {
  const item = h(
    "li",
    { class: "card entry", "data-entry-id": e.entryId, "data-status": e.status },
    h("div", { class: "row" }, h("strong", {}, e.points), h("span", { class: `badge ${e.status.toLowerCase()}` }, e.status)),
    h("div", { class: "muted" }, e.mission),
    e.remaining ? h("div", { class: "muted", "data-remaining": e.remaining }, e.remaining) : "",
  );
  if (e.status === "Expired") return item;
  if (e.status === "Exchanged") {
    item.append(h("div", { class: "order" }, `${e.gift ?? "Gift"} · order `, h("code", {}, e.order ?? "")));
  } else if (e.choices) {
    const list = h("ul", { class: "choices", "aria-label": "Choose a gift" });
    for (const c of e.choices) {
      list.append(
        h(
          "li",
          {},
          h(
            "button",
            { type: "button", "data-action": "exchange", "data-entry": e.entryId, "data-sku": c.sku, disabled: Boolean(c.unavailable) || e.exchanging },
            h("span", {}, c.name),
            h("span", { class: "muted" }, c.unavailable ?? c.price),
          ),
        ),
      );
    }
    item.append(list, h("button", { type: "button", class: "link", "data-action": "cancel" }, "Cancel"));
  } else {
    item.append(
      h("button", { type: "button", class: "primary", "data-action": "choose", "data-entry": e.entryId, disabled: !e.canExchange }, e.exchanging ? "Exchanging…" : "Exchange"),
    );
  }
  return item;
}

function exchange(x: ExchangeView) {
  return h(
    "li",
    { class: "card exchange", "data-exchange-id": x.exchangeId, "data-sku": x.sku, "data-status": x.status },
    h("div", { class: "row" }, h("strong", {}, x.gift), h("span", { class: `badge ${x.status.toLowerCase()}` }, x.status)),
    h("div", { class: "row muted" }, h("span", {}, x.paidBy), h("span", { class: "points" }, x.price)),
    h("div", { class: x.status === "Refunded" ? "fate refunded" : "fate" }, x.fate),
    x.order ? h("div", { class: "order" }, "Order ", h("code", {}, x.order)) : "",
  );
}

function product(p: ProductView) {
  // Not "Exchange", which names a reward's own button.
  const label = p.buying ? "Getting it…" : p.retry ? "Try again" : "Get it with points";
  return h(
    "li",
    { class: "product", "data-sku": p.sku },
    h("div", { class: "row" }, h("span", {}, p.name), h("span", { class: "muted" }, `${p.price} · ${p.stock}`)),
    h(
      "button",
      { type: "button", "data-action": "buy", "data-sku": p.sku, disabled: !p.canBuy },
      p.unavailable ?? label,
    ),
  );
}

export function render(root: HTMLElement, view: View) {
  const missions = h("ul", { class: "list" });
  for (const m of view.missions) {
    missions.append(
      h(
        "li",
        { class: "card mission", "data-mission-code": m.code, "data-reward-status": m.reward },
        h("div", { class: "row" }, h("strong", {}, m.title), h("span", { class: "points" }, m.points)),
        h("div", { class: "row muted" }, h("span", {}, m.status), h("span", { class: `badge ${m.reward.toLowerCase()}` }, `Reward ${m.reward}`)),
      ),
    );
  }
  const wallet = h("ul", { class: "list" });
  for (const e of view.entries) wallet.append(entry(e));
  const exchanges = h("ul", { class: "list" });
  for (const x of view.exchanges) exchanges.append(exchange(x));
  const catalogue = h("ul", { class: "list catalogue" });
  for (const p of view.catalogue) catalogue.append(product(p));
  root.replaceChildren(
    h(
      "header",
      {},
      h("div", {}, h("h1", {}, "My page"), h("div", { class: "muted", "data-player": view.player }, view.player)),
      h("div", { class: "header-side" }, h("span", { class: `link-state ${view.link === "Live" ? "live" : ""}` }, view.link), h("button", { type: "button", class: "link", "data-action": "sign-out" }, "Sign out")),
    ),
    notice(view) ?? "",
    // Only in the development build: the production bundle has no such control.
    __DEV_BUILD__ && view.nextMission
      ? h("p", { class: "dev" }, h("button", { type: "button", "data-action": "play", "data-mission": view.nextMission }, "Play a match"), " development build: the game server achieves a mission")
      : "",
    h("section", { "aria-labelledby": "missions" }, h("h2", { id: "missions" }, "Missions"), view.missions.length ? missions : h("p", { class: "muted" }, "No mission achieved yet. Play a match!")),
    h(
      "section",
      { "aria-labelledby": "wallet" },
      h("h2", { id: "wallet" }, "Wallet ", h("span", { class: "points", "data-available-points": view.points }, view.points)),
      view.entries.length ? wallet : h("p", { class: "muted" }, "Rewards you earn land here."),
    ),
    h(
      "section",
      { "aria-labelledby": "exchanges" },
      h("h2", { id: "exchanges" }, "Your gifts"),
      view.exchanges.length ? exchanges : h("p", { class: "muted" }, "Gifts you get with your points show here."),
    ),
    h("section", { "aria-labelledby": "gifts" }, h("h2", { id: "gifts" }, "Gifts ", h("span", { class: "muted" }, "for your points")), catalogue),
  );
}

export function renderSignIn(root: HTMLElement, options: { development: boolean; oidc: boolean; message?: string }) {
  const form = h("form", { class: "card sign-in", "data-action": "sign-in" });
  if (options.development) {
    form.append(
      h("label", { for: "player" }, "Player id"),
      h("input", { id: "player", name: "player", autocomplete: "username", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}", placeholder: "player-1" }),
      h("button", { type: "submit", class: "primary" }, "Sign in (development)"),
    );
  } else if (options.oidc) {
    form.append(h("button", { type: "submit", class: "primary" }, "Sign in"));
  } else {
    form.append(h("p", {}, "Signing in is not configured on this server."));
  }
  root.replaceChildren(
    h("header", {}, h("h1", {}, "My page")),
    options.message ? h("p", { class: "notice error", role: "alert" }, options.message) : "",
    form,
  );
}
