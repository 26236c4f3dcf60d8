import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { definitelyRefused, explain } from "./errors.js";

const error = (code: Code, message: string, retryAfterMs?: string) =>
  new ConnectError(message, code, retryAfterMs ? new Headers({ "retry-after-ms": retryAfterMs }) : undefined);

describe("errors in a player's words", () => {
  it("says when to try the exchange again while gift is busy", () => {
    const busy = error(Code.Unavailable, "the gift exchange is busy; your reward is unchanged, try again later", "2500");
    expect(explain(busy, "exchange").text).toBe(
      "The gift exchange is busy right now and your reward is unchanged. Please try again in 3 seconds.",
    );
    expect(explain(error(Code.Unavailable, "x"), "exchange").text).toContain("try again in a moment");
  });

  it("names the domain's refusals", () => {
    expect(explain(error(Code.FailedPrecondition, "wallet entry e1 was already exchanged (gift order o1)"), "exchange").text).toBe(
      "You already exchanged this reward.",
    );
    expect(explain(error(Code.FailedPrecondition, "PLUSH-MASCOT is out of stock"), "exchange").text).toBe(
      "Sorry, that gift is out of stock. Pick another one.",
    );
    expect(explain(error(Code.FailedPrecondition, "not enough points: X costs 800 points"), "exchange").text).toContain("not enough points");
  });

  it("asks to sign in again when the token is refused, and stops at another player's page", () => {
    expect(explain(error(Code.Unauthenticated, "token has expired"))).toEqual({
      text: "Your session has ended. Please sign in again.",
      consequence: "sign-in",
    });
    expect(explain(error(Code.PermissionDenied, "you are player-2")).consequence).toBe("stop");
  });

  it("slows a player down in words, with the wait", () => {
    expect(explain(error(Code.ResourceExhausted, "rate limit exceeded", "400")).text).toBe(
      "You are going a bit fast. Please try again in 1 second.",
    );
  });

  it("never shows a status code or a raw message", () => {
    for (const code of [Code.Internal, Code.Unknown, Code.DataLoss, Code.Unimplemented]) {
      const text = explain(error(code, "INTERNAL: diesel said no")).text;
      expect(text).not.toMatch(/diesel|internal|\d{2}/i);
    }
  });

  it("says how many points an exchange of points lacks, and other refusals in words", () => {
    expect(explain(error(Code.FailedPrecondition, "player-1 has 120 points; PLUSH-MASCOT costs 800"), "points").text).toBe(
      "Not enough points: you have 120 pts and that gift costs 800 pts.",
    );
    expect(explain(error(Code.FailedPrecondition, "PLUSH-MASCOT is out of stock"), "points").text).toBe(
      "Sorry, that gift is out of stock. Pick another one.",
    );
    expect(
      explain(error(Code.FailedPrecondition, "event WINTER-2026 ended at 2027-01-10T00:00:00Z; SNOW-SLED is no longer exchanged"), "points").text,
    ).toBe("That gift is no longer offered: its event has ended.");
    expect(explain(error(Code.FailedPrecondition, "something new"), "points").text).toBe("That cannot be done right now. Your points are unchanged.");
  });

  it("asks to try an exchange of points again later while gift is busy", () => {
    const text = explain(error(Code.Unavailable, "the gift exchange is busy", "2500"), "points").text;
    expect(text).toBe("The gift exchange is busy right now. Please try again later: trying again never orders twice.");
    expect(text).not.toMatch(/UNAVAILABLE|14/);
  });

  it("keeps an exchange's key after a failure that may hide it, drops it after a refusal", () => {
    expect(definitelyRefused(error(Code.FailedPrecondition, "not enough points"))).toBe(true);
    expect(definitelyRefused(error(Code.NotFound, "no such product"))).toBe(true);
    for (const code of [Code.Unavailable, Code.DeadlineExceeded, Code.Canceled, Code.Unknown, Code.Internal, Code.ResourceExhausted]) {
      expect(definitelyRefused(error(code, "x")), Code[code]).toBe(false);
    }
  });
});
