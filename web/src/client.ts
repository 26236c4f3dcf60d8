// The generated clients over gRPC-Web, each call carrying the player's token.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { GiftService } from "./gen/game/gift/v1/gift_pb.js";
import { MissionService } from "./gen/game/mission/v1/mission_pb.js";
import { MyPageService } from "./gen/game/mypage/v1/mypage_pb.js";
import { WalletService } from "./gen/game/wallet/v1/wallet_pb.js";

// Served by the gateway itself: same origin. The development server
// (`npm run dev`) names the gateway, which allows its origin (CORS).
declare const __GATEWAY__: string;
const gateway = __GATEWAY__;

export function clients(token: () => string) {
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${token()}`);
    return next(request);
  };
  const transport = createGrpcWebTransport({ baseUrl: gateway, useBinaryFormat: true, interceptors: [bearer] });
  return {
    missions: createClient(MissionService, transport),
    wallet: createClient(WalletService, transport),
    gifts: createClient(GiftService, transport),
    pages: createClient(MyPageService, transport),
  };
}

export type Clients = ReturnType<typeof clients>;
