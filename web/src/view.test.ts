import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ProductSchema } from "./gen/game/gift/v1/gift_pb.js";
import { MissionDefinitionSchema, MissionStatus } from "./gen/game/mission/v1/mission_pb.js";
import { MyPageSchema } from "./gen/game/mypage/v1/mypage_pb.js";
import { RewardStatus } from "./gen/game/reward/v1/reward_pb.js";
import { WalletEntryStatus } from "./gen/game/wallet/v1/wallet_pb.js";
import { view, type State } from "./view.js";

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
});
