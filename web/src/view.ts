// The page's view model: what the player sees, computed from what the
// services said. Pure, so every rule of the page is tested without a browser.
import type { MyPage } from "./gen/game/mypage/v1/mypage_pb.js";
import type { MissionDefinition } from "./gen/game/mission/v1/mission_pb.js";
import type { Product } from "./gen/game/gift/v1/gift_pb.js";
import { MissionStatus } from "./gen/game/mission/v1/mission_pb.js";
import { RewardStatus } from "./gen/game/reward/v1/reward_pb.js";
import { ExchangeStatus, WalletEntryStatus } from "./gen/game/wallet/v1/wallet_pb.js";

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
  /** The product being bought with points now. */
  buying?: string;
  /** A points exchange whose outcome is not known: retried under its key. */
  attempt?: Attempt;
  notice?: { kind: "error" | "info"; text: string };
}

/** One points exchange the player asked for, under its idempotency key. */
export interface Attempt {
  sku: string;
  key: string;
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
  /** What it still holds to spend, when exchanges took part of it. */
  remaining?: string;
  mission: string;
  status: "Available" | "Exchanged" | "Expired";
  /** What it was exchanged for, and the gift order. */
  gift?: string;
  order?: string;
  canExchange: boolean;
  exchanging: boolean;
  /** The gifts to choose from, when the choice is open. */
  choices?: GiftChoice[];
}

export interface ProductView {
  sku: string;
  name: string;
  price: string;
  stock: string;
  /** Why it cannot be bought with the points the player has, or undefined when it can. */
  unavailable?: "Not enough points" | "Out of stock";
  canBuy: boolean;
  buying: boolean;
  /** The last exchange of it has no known outcome: buying again retries it. */
  retry: boolean;
}

export interface ExchangeView {
  exchangeId: string;
  sku: string;
  gift: string;
  price: string;
  status: "Placed" | "Refunded";
  order: string;
  /** How many rewards paid for it. */
  paidBy: string;
  /** What the player should know of its fate, in words. */
  fate: string;
}

export interface View {
  player: string;
  points: string;
  link: string;
  missions: MissionView[];
  entries: EntryView[];
  exchanges: ExchangeView[];
  catalogue: ProductView[];
  notice?: State["notice"];
  /** The next mission not achieved yet (for the development "play a match"). */
  nextMission?: string;
}

const number = new Intl.NumberFormat("en");
const dates = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeZone: "UTC" });
const day = (seconds: bigint) => dates.format(new Date(Number(seconds) * 1000));
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
    const expired = e.status === WalletEntryStatus.EXPIRED;
    const code = missionOf.get(e.missionId);
    const entry: EntryView = {
      entryId: e.entryId,
      points: points(e.points),
      mission: (code && titles.get(code)) ?? code ?? "A reward",
      status: exchanged ? "Exchanged" : expired ? "Expired" : "Available",
      canExchange: !exchanged && !expired && state.exchanging === undefined,
      exchanging: state.exchanging === e.entryId,
    };
    if (!exchanged && !expired && e.remainingPoints < e.points) entry.remaining = `${points(e.remainingPoints)} left`;
    if (exchanged) {
      entry.gift = productOf.get(e.productSku)?.name ?? e.productSku;
      entry.order = e.giftOrderId;
    } else if (!expired && state.choosing === e.entryId) {
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
  const balance = page?.availablePoints ?? 0n;
  const exchanges = (page?.exchanges ?? []).map((x): ExchangeView => {
    const refunded = x.status === ExchangeStatus.REFUNDED;
    const gift = productOf.get(x.productSku)?.name ?? (x.productSku || "A gift");
    const rewards = x.reservations.length;
    let fate = `Ordered${x.placedAt ? ` on ${day(x.placedAt.seconds)}` : ""}.`;
    if (refunded) {
      const reason = x.cancelReason ? `: ${x.cancelReason}` : "";
      const back = x.refundedPoints > 0n ? ` ${points(x.refundedPoints)} are back in your wallet.` : "";
      const gone = x.expiredPoints > 0n ? ` ${points(x.expiredPoints)} had expired and did not come back.` : "";
      fate = `The vendor cancelled this order${reason}.${back}${gone}`;
    }
    return {
      exchangeId: x.exchangeId,
      sku: x.productSku,
      gift,
      price: points(x.pricePoints),
      status: refunded ? "Refunded" : "Placed",
      order: x.giftOrderId,
      paidBy: rewards === 1 ? "Paid with 1 reward" : `Paid with ${rewards} rewards`,
      fate,
    };
  });
  return {
    player: state.customerId,
    points: points(balance),
    link: links[state.link],
    missions,
    entries,
    exchanges,
    catalogue: state.products.map((p): ProductView => {
      const retrying = state.attempt?.sku === p.sku;
      // A retry may find its exchange done already: never refuse it here.
      const unavailable = retrying ? undefined : p.stock <= 0n ? "Out of stock" : p.pricePoints > balance ? "Not enough points" : undefined;
      return {
        sku: p.sku,
        name: p.name,
        price: points(p.pricePoints),
        stock: p.stock > 0n ? `${number.format(p.stock)} left` : "Out of stock",
        unavailable,
        canBuy: unavailable === undefined && state.buying === undefined,
        buying: state.buying === p.sku,
        retry: retrying,
      };
    }),
    notice: state.notice,
    nextMission: state.definitions.find((d) => !achieved.has(d.missionCode))?.missionCode,
  };
}

/**
 * The attempt a click on "Exchange" for `sku` makes: the unsettled attempt
 * for that product again, under its key (so that a retry never orders
 * twice), or a new attempt under a `fresh` key.
 */
export function attemptFor(previous: Attempt | undefined, sku: string, fresh: () => string): Attempt {
  return previous?.sku === sku ? previous : { sku, key: fresh() };
}
