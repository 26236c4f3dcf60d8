// The page's view model: what the player sees, computed from what the
// services said. Pure, so every rule of the page is tested without a browser.
import type { MyPage } from "./gen/game/mypage/v1/mypage_pb.js";
import type { MissionDefinition } from "./gen/game/mission/v1/mission_pb.js";
import type { Product } from "./gen/game/gift/v1/gift_pb.js";
import { MissionStatus } from "./gen/game/mission/v1/mission_pb.js";
import { RewardStatus } from "./gen/game/reward/v1/reward_pb.js";
import { WalletEntryStatus } from "./gen/game/wallet/v1/wallet_pb.js";

/** How the page's live link stands. */
export type Link = "connecting" | "live" | "reconnecting" | "closed";

export interface State {
  customerId: string;
  page?: MyPage;
  definitions: MissionDefinition[];
  products: Product[];
  link: Link;
  /** The wallet entry whose gift choice is open. */
  choosing?: string;
  /** The wallet entry being exchanged now. */
  exchanging?: string;
  notice?: { kind: "error" | "info"; text: string };
}

export interface MissionView {
  code: string;
  title: string;
  status: "Achieved" | "Rewarded";
  reward: "Allocated" | "Issued" | "Exchanged" | "Expired" | "Pending";
  points: string;
}

export interface GiftChoice {
  sku: string;
  name: string;
  price: string;
  /** Why it cannot be chosen, or undefined when it can. */
  unavailable?: "Not enough points" | "Out of stock";
}

export interface EntryView {
  entryId: string;
  points: string;
  mission: string;
  status: "Available" | "Exchanged";
  /** What it was exchanged for, and the gift order. */
  gift?: string;
  order?: string;
  canExchange: boolean;
  exchanging: boolean;
  /** The gifts to choose from, when the choice is open. */
  choices?: GiftChoice[];
}

export interface View {
  player: string;
  points: string;
  link: string;
  missions: MissionView[];
  entries: EntryView[];
  catalogue: { sku: string; name: string; price: string; stock: string }[];
  notice?: State["notice"];
  /** The next mission not achieved yet (for the development "play a match"). */
  nextMission?: string;
}

const number = new Intl.NumberFormat("en");
export const points = (value: bigint | number) => `${number.format(value)} pts`;

const rewardNames: Record<RewardStatus, MissionView["reward"]> = {
  [RewardStatus.UNSPECIFIED]: "Pending",
  [RewardStatus.ALLOCATED]: "Allocated",
  [RewardStatus.ISSUED]: "Issued",
  [RewardStatus.EXCHANGED]: "Exchanged",
  [RewardStatus.EXPIRED]: "Expired",
};

const links: Record<Link, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  closed: "Not following",
};

export function view(state: State): View {
  const titles = new Map(state.definitions.map((d) => [d.missionCode, d.title]));
  const page = state.page;
  const missions = (page?.missions ?? []).map((m) => ({
    code: m.missionCode,
    title: titles.get(m.missionCode) ?? m.missionCode,
    status: m.status === MissionStatus.REWARDED ? ("Rewarded" as const) : ("Achieved" as const),
    reward: rewardNames[m.rewardStatus] ?? "Pending",
    points: points(m.rewardPoints),
  }));
  const missionOf = new Map((page?.missions ?? []).map((m) => [m.missionId, m.missionCode]));
  const productOf = new Map(state.products.map((p) => [p.sku, p]));
  const entries = (page?.wallet ?? []).map((e): EntryView => {
    const exchanged = e.status === WalletEntryStatus.EXCHANGED;
    const code = missionOf.get(e.missionId);
    const entry: EntryView = {
      entryId: e.entryId,
      points: points(e.points),
      mission: (code && titles.get(code)) ?? code ?? "A reward",
      status: exchanged ? "Exchanged" : "Available",
      canExchange: !exchanged && state.exchanging === undefined,
      exchanging: state.exchanging === e.entryId,
    };
    if (exchanged) {
      entry.gift = productOf.get(e.productSku)?.name ?? e.productSku;
      entry.order = e.giftOrderId;
    } else if (state.choosing === e.entryId) {
      entry.choices = state.products.map((p) => ({
        sku: p.sku,
        name: p.name,
        price: points(p.pricePoints),
        unavailable: p.stock <= 0n ? "Out of stock" : p.pricePoints > e.points ? "Not enough points" : undefined,
      }));
    }
    return entry;
  });
  const achieved = new Set(missions.map((m) => m.code));
  return {
    player: state.customerId,
    points: points(page?.availablePoints ?? 0n),
    link: links[state.link],
    missions,
    entries,
    catalogue: state.products.map((p) => ({
      sku: p.sku,
      name: p.name,
      price: points(p.pricePoints),
      stock: p.stock > 0n ? `${number.format(p.stock)} left` : "Out of stock",
    })),
    notice: state.notice,
    nextMission: state.definitions.find((d) => !achieved.has(d.missionCode))?.missionCode,
  };
}
