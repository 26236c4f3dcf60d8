#!/usr/bin/env python3
"""The player's story through the gateway, as an external client would play it.

Generates Python stubs from proto/ with grpcio-tools (into --stubs, or a
temporary directory), then, with the tokens it is given, plays: the mission
catalogue, a mission achieved, its reward issued into the wallet, exchanged
for a gift, the order, my page, and the operator's settlement; and checks the
edge's refusals: no token, another player's token, a player on settlements.

Usage (the system-tests crate runs it against a mesh it started):

    python scripts/python_client/player_story.py --gateway 127.0.0.1:8080 \
        --customer player-1 --token "$TOKEN" --other-token "$OTHER" --operator-token "$OPERATOR"

Exits 0 when every step passed; prints one line per step and a final
"N passed, M failed" line.
"""

import argparse
import importlib
import importlib.resources
import pathlib
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"


def generate_stubs(out: pathlib.Path) -> None:
    """Compiles every .proto of proto/ into `out` (messages and gRPC stubs)."""
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    args = ["protoc", f"-I{PROTO}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        raise SystemExit("grpc_tools.protoc failed on proto/")


class Story:
    def __init__(self, stubs, channel, args):
        self.pb = stubs
        self.args = args
        self.passed = 0
        self.failed = 0
        self.missions = stubs["mission_grpc"].MissionServiceStub(channel)
        self.rewards = stubs["reward_grpc"].RewardServiceStub(channel)
        self.wallets = stubs["wallet_grpc"].WalletServiceStub(channel)
        self.gifts = stubs["gift_grpc"].GiftServiceStub(channel)
        self.pages = stubs["mypage_grpc"].MyPageServiceStub(channel)
        self.settlements = stubs["settlement_grpc"].SettlementServiceStub(channel)

    def auth(self, token):
        return (("authorization", f"Bearer {token}"),)

    @property
    def me(self):
        return self.auth(self.args.token)

    def step(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"  ok    {name}")
        else:
            self.failed += 1
            print(f"  FAIL  {name}: {detail}")

    def refused(self, name, code, call):
        try:
            call()
        except grpc.RpcError as error:
            self.step(name, error.code() == code, f"{error.code()} {error.details()}")
            return
        self.step(name, False, "the call was accepted")

    def until(self, what, query, within=20.0):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                found = query()
            except grpc.RpcError:
                found = None
            if found:
                return found
            time.sleep(0.1)
        raise SystemExit(f"waited {within}s for {what}")

    def play(self):
        m, w, g, p, s = (self.pb[k] for k in ("mission", "wallet", "gift", "mypage", "settlement"))
        customer = self.args.customer

        catalogue = self.missions.ListMissionDefinitions(m.ListMissionDefinitionsRequest(), metadata=self.me, timeout=5)
        first_win = [d for d in catalogue.definitions if d.mission_code == "FIRST_WIN"]
        self.step("the catalogue offers FIRST_WIN", bool(first_win), catalogue)

        achieved = self.missions.AchieveMission(
            m.AchieveMissionRequest(customer_id=customer, mission_code="FIRST_WIN"), metadata=self.me, timeout=5
        ).mission
        self.step("the mission is achieved", achieved.status == m.MISSION_STATUS_ACHIEVED, achieved)

        rewarded = self.until(
            "the mission to be rewarded",
            lambda: (
                lambda got: got if got.status == m.MISSION_STATUS_REWARDED else None
            )(self.missions.GetMission(m.GetMissionRequest(mission_id=achieved.mission_id), metadata=self.me).mission),
        )
        self.step("the mission carries its reward", bool(rewarded.reward_id), rewarded)

        entry = self.until(
            "the reward to reach the wallet",
            lambda: next(
                (
                    e
                    for e in self.wallets.GetWallet(w.GetWalletRequest(customer_id=customer), metadata=self.me).wallet.entries
                    if e.reward_id == rewarded.reward_id
                ),
                None,
            ),
        )
        self.step("the wallet holds the reward", entry.status == w.WALLET_ENTRY_STATUS_AVAILABLE, entry)

        products = self.gifts.ListProducts(g.ListProductsRequest(), metadata=self.me).products
        affordable = [x for x in products if x.price_points <= entry.points and x.stock > 0]
        self.step("a gift is affordable", bool(affordable), products)
        product = max(affordable, key=lambda x: x.price_points)

        self.refused(
            "another player cannot read this wallet",
            grpc.StatusCode.PERMISSION_DENIED,
            lambda: self.wallets.GetWallet(w.GetWalletRequest(customer_id=customer), metadata=self.auth(self.args.other_token)),
        )
        self.refused(
            "another player cannot exchange this reward",
            grpc.StatusCode.PERMISSION_DENIED,
            lambda: self.wallets.ExchangeReward(
                w.ExchangeRewardRequest(customer_id=customer, entry_id=entry.entry_id, product_sku=product.sku),
                metadata=self.auth(self.args.other_token),
            ),
        )
        self.refused(
            "a call without a token is unauthenticated",
            grpc.StatusCode.UNAUTHENTICATED,
            lambda: self.wallets.GetWallet(w.GetWalletRequest(customer_id=customer)),
        )
        self.refused(
            "a player cannot list settlements",
            grpc.StatusCode.PERMISSION_DENIED,
            lambda: self.settlements.ListSettlements(s.ListSettlementsRequest(), metadata=self.me),
        )
        self.refused(
            "a malformed customer id is an invalid argument",
            grpc.StatusCode.INVALID_ARGUMENT,
            lambda: self.wallets.GetWallet(w.GetWalletRequest(customer_id="not a customer"), metadata=self.me),
        )

        exchanged = self.wallets.ExchangeReward(
            w.ExchangeRewardRequest(customer_id=customer, entry_id=entry.entry_id, product_sku=product.sku),
            metadata=self.me,
            timeout=10,
        ).entry
        self.step(
            f"the reward is exchanged for {product.sku}",
            exchanged.status == w.WALLET_ENTRY_STATUS_EXCHANGED and bool(exchanged.gift_order_id),
            exchanged,
        )
        self.refused(
            "exchanging it again is refused",
            grpc.StatusCode.FAILED_PRECONDITION,
            lambda: self.wallets.ExchangeReward(
                w.ExchangeRewardRequest(customer_id=customer, entry_id=entry.entry_id, product_sku=product.sku),
                metadata=self.me,
            ),
        )

        order = self.gifts.GetOrder(g.GetOrderRequest(order_id=exchanged.gift_order_id), metadata=self.me).order
        self.step("the gift order is the player's", order.customer_id == customer and order.product_sku == product.sku, order)

        page = self.until(
            "my page to show the exchange",
            lambda: (
                lambda page: page
                if any(e.gift_order_id == exchanged.gift_order_id for e in page.wallet)
                else None
            )(self.pages.GetMyPage(p.GetMyPageRequest(customer_id=customer), metadata=self.me).my_page),
        )
        self.step("my page shows the mission and the exchange", len(page.missions) == 1, page)

        watch = self.pages.WatchMyPage(p.WatchMyPageRequest(customer_id=customer), metadata=self.me, timeout=5)
        first = next(iter(watch)).my_page
        watch.cancel()
        self.step("watching my page starts with the current page", first.customer_id == customer, first)

        operator = self.auth(self.args.operator_token)
        settlement = self.until(
            "the settlement of the order",
            lambda: next(
                (
                    x
                    for x in self.settlements.ListSettlements(
                        s.ListSettlementsRequest(product_sku=product.sku, page_size=500), metadata=operator
                    ).settlements
                    if x.order_id == order.order_id
                ),
                None,
            ),
        )
        self.step("the operator sees the settlement", settlement.amount > 0, settlement)


def load_stubs(out: pathlib.Path):
    sys.path.insert(0, str(out))
    names = {}
    for context in ("mission", "reward", "wallet", "gift", "mypage", "settlement"):
        names[context] = importlib.import_module(f"game.{context}.v1.{context}_pb2")
        names[f"{context}_grpc"] = importlib.import_module(f"game.{context}.v1.{context}_pb2_grpc")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="127.0.0.1:8080")
    parser.add_argument("--customer", required=True)
    parser.add_argument("--token", required=True, help="the player's bearer token")
    parser.add_argument("--other-token", required=True, help="another player's bearer token")
    parser.add_argument("--operator-token", required=True, help="an operator's bearer token")
    parser.add_argument("--stubs", help="where to generate the stubs (default: a temporary directory)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="python-stubs-") as scratch:
        out = pathlib.Path(args.stubs or scratch)
        out.mkdir(parents=True, exist_ok=True)
        generate_stubs(out)
        stubs = load_stubs(out)
        print(f"stubs generated from {PROTO} into {out}; playing through {args.gateway}")
        with grpc.insecure_channel(args.gateway) as channel:
            story = Story(stubs, channel, args)
            story.play()
    print(f"{story.passed} passed, {story.failed} failed")
    return 0 if story.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
