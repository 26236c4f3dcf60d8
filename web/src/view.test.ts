import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ProductSchema } from "./gen/game/gift/v1/gift_pb.js";
import { MissionDefinitionSchema, MissionStatus } from "./gen/game/mission/v1/mission_pb.js";
import { MyPageExchangeSchema, MyPageSchema } from "./gen/game/mypage/v1/mypage_pb.js";
import { RewardStatus } from "./gen/game/reward/v1/reward_pb.js";
import { ExchangeStatus, WalletEntryStatus } from "./gen/game/wallet/v1/wallet_pb.js";
import { attemptFor, view, type State } from "./view.js";

const definitions = [
  create(MissionDefinitionSchema, { missionCode: "FIRST_LOGIN", title: "Log in during the event", rewardPoints: 100n }),
  create(MissionDefinitionSchema, { missionCode: "FIRST_WIN", title: "Win a match during the event", rewardPoints: 300n }),
];
const products = [
  create(ProductSchema, { sku: "STICKER-PACK", name: "Sticker pack", pricePoints: 100n, stock: 10n }),
  create(ProductSchema, { sku: "AVATAR-FRAME", name: "Golden avatar frame", pricePoints: 300n, stock: 0n }),
  create(ProductSchema, { sku: "PLUSH-MASCOT", name: "Plush mascot", pricePoints: 800n, stock: 5n }),
];

function given(overrides: Partial<State> = {}): State {
  return {
    customerId: "player-1",
    definitions,
    products,
    link: "live",
    page: create(MyPageSchema, {
      customerId: "player-1",
      availablePoints: 300n,
      missions: [
        { missionId: "m1", missionCode: "FIRST_WIN", status: MissionStatus.REWARDED, rewardId: "r1", rewardStatus: RewardStatus.ISSUED, rewardPoints: 300n },
      ],
      wallet: [{ entryId: "e1", rewardId: "r1", missionId: "m1", points: 300n, status: WalletEntryStatus.AVAILABLE }],
    }),
    ...overrides,
  };
}

describe("the page's view", () => {
  it("names missions by their title and shows their reward's status", () => {
    const page = view(given());
    expect(page.missions).toEqual([
      { code: "FIRST_WIN", title: "Win a match during the event", status: "Rewarded", reward: "Issued", points: "300 pts" },
    ]);
    expect(page.points).toBe("300 pts");
    expect(page.link).toBe("Live");
  });

  it("offers an available entry for exchange, and only one exchange at a time", () => {
    expect(view(given()).entries[0]).toMatchObject({ status: "Available", canExchange: true, mission: "Win a match during the event" });
    const busy = view(given({ exchanging: "e1" })).entries[0];
    expect(busy).toMatchObject({ canExchange: false, exchanging: true });
  });

  it("lets the player choose among the gifts the entry can pay for and that are in stock", () => {
    const choices = view(given({ choosing: "e1" })).entries[0]?.choices;
    expect(choices).toEqual([
      { sku: "STICKER-PACK", name: "Sticker pack", price: "100 pts", unavailable: undefined },
      { sku: "AVATAR-FRAME", name: "Golden avatar frame", price: "300 pts", unavailable: "Out of stock" },
      { sku: "PLUSH-MASCOT", name: "Plush mascot", price: "800 pts", unavailable: "Not enough points" },
    ]);
  });

  it("shows an exchanged entry with its gift and order, and no exchange", () => {
    const state = given();
    const entry = state.page!.wallet[0]!;
    entry.status = WalletEntryStatus.EXCHANGED;
    entry.productSku = "STICKER-PACK";
    entry.giftOrderId = "order-9";
    expect(view(state).entries[0]).toMatchObject({ status: "Exchanged", gift: "Sticker pack", order: "order-9", canExchange: false });
  });

  it("names the next mission not achieved yet for a development match", () => {
    expect(view(given()).nextMission).toBe("FIRST_LOGIN");
    expect(view(given({ page: undefined })).nextMission).toBe("FIRST_LOGIN");
  });

  it("marks the catalogue's gifts out of stock", () => {
    expect(view(given()).catalogue.map((p) => p.stock)).toEqual(["10 left", "Out of stock", "5 left"]);
  });

  it("shows an empty page before the first update arrives", () => {
    const page = view(given({ page: undefined, link: "connecting" }));
    expect(page).toMatchObject({ missions: [], entries: [], points: "0 pts", link: "Connecting…" });
  });

  it("shows the balance and what a partly spent reward still holds", () => {
    const state = given();
    state.page!.availablePoints = 120n;
    state.page!.wallet[0]!.remainingPoints = 120n;
    const page = view(state);
    expect(page.points).toBe("120 pts");
    expect(page.entries[0]).toMatchObject({ status: "Available", points: "300 pts", remaining: "120 pts left" });
    state.page!.wallet[0]!.remainingPoints = 300n;
    expect(view(state).entries[0]?.remaining).toBeUndefined();
  });

  it("shows an expired reward as expired, with nothing to exchange", () => {
    const state = given({ choosing: "e1" });
    state.page!.wallet[0]!.status = WalletEntryStatus.EXPIRED;
    const entry = view(state).entries[0];
    expect(entry).toMatchObject({ status: "Expired", canExchange: false });
    expect(entry?.choices).toBeUndefined();
  });

  it("offers the gifts the balance pays for and that are in stock", () => {
    const catalogue = view(given()).catalogue;
    expect(catalogue.map((p) => [p.sku, p.unavailable, p.canBuy])).toEqual([
      ["STICKER-PACK", undefined, true],
      ["AVATAR-FRAME", "Out of stock", false],
      ["PLUSH-MASCOT", "Not enough points", false],
    ]);
  });

  it("buys one gift at a time, and offers to try a gift again whose exchange has no known outcome", () => {
    const busy = view(given({ buying: "STICKER-PACK" })).catalogue;
    expect(busy[0]).toMatchObject({ buying: true, canBuy: false });
    expect(busy[2]?.canBuy).toBe(false);
    // The points may be reserved already: the retry is never refused here.
    const retry = view(given({ attempt: { sku: "PLUSH-MASCOT", key: "k1" } })).catalogue[2];
    expect(retry).toMatchObject({ retry: true, unavailable: undefined, canBuy: true });
  });

  it("retries an exchange under its key, and a new exchange under a new key", () => {
    let n = 0;
    const fresh = () => `key-${++n}`;
    const first = attemptFor(undefined, "STICKER-PACK", fresh);
    expect(first).toEqual({ sku: "STICKER-PACK", key: "key-1" });
    expect(attemptFor(first, "STICKER-PACK", fresh)).toBe(first);
    expect(attemptFor(first, "PLUSH-MASCOT", fresh)).toEqual({ sku: "PLUSH-MASCOT", key: "key-2" });
  });

  it("shows each exchange with its gift, price and the rewards that paid for it", () => {
    const state = given();
    state.page!.exchanges = [
      create(MyPageExchangeSchema, {
        exchangeId: "x1",
        productSku: "PLUSH-MASCOT",
        pricePoints: 800n,
        status: ExchangeStatus.PLACED,
        giftOrderId: "order-7",
        reservations: [
          { entryId: "e1", rewardId: "r1", points: 300n },
          { entryId: "e2", rewardId: "r2", points: 500n },
        ],
        placedAt: { seconds: 1_765_000_000n },
      }),
    ];
    expect(view(state).exchanges).toEqual([
      {
        exchangeId: "x1",
        sku: "PLUSH-MASCOT",
        gift: "Plush mascot",
        price: "800 pts",
        status: "Placed",
        order: "order-7",
        paidBy: "Paid with 2 rewards",
        fate: "Ordered on Dec 6, 2025.",
      },
    ]);
  });

  it("tells why the vendor cancelled an exchange and what came back", () => {
    const state = given();
    state.page!.exchanges = [
      create(MyPageExchangeSchema, {
        exchangeId: "x1",
        productSku: "STICKER-PACK",
        pricePoints: 100n,
        status: ExchangeStatus.REFUNDED,
        giftOrderId: "order-7",
        reservations: [{ entryId: "e1", rewardId: "r1", points: 100n }],
        cancelReason: "the vendor ran out of stickers",
        refundedPoints: 60n,
        expiredPoints: 40n,
      }),
    ];
    expect(view(state).exchanges[0]).toMatchObject({
      status: "Refunded",
      paidBy: "Paid with 1 reward",
      fate: "The vendor cancelled this order: the vendor ran out of stickers. 60 pts are back in your wallet. 40 pts had expired and did not come back.",
    });
  });
});
