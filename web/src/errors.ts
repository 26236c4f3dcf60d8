// What a failed call means to a player, in words: never a status code.
import { Code, ConnectError } from "@connectrpc/connect";

/** What the page does after an error, besides saying it. */
export type Consequence = "none" | "sign-in" | "stop";

export interface Explanation {
  text: string;
  consequence: Consequence;
}

/** The `retry-after-ms` the gateway and the wallet send with a refusal, as whole seconds (at least 1). */
export function waitSeconds(error: ConnectError): number | undefined {
  const value = error.metadata.get("retry-after-ms");
  const millis = value === null ? Number.NaN : Number(value);
  return Number.isFinite(millis) && millis >= 0 ? Math.max(1, Math.ceil(millis / 1000)) : undefined;
}

function later(seconds: number | undefined): string {
  if (seconds === undefined) return "Please try again in a moment.";
  return seconds === 1 ? "Please try again in 1 second." : `Please try again in ${seconds} seconds.`;
}

/** What failed: the page, a development match, a reward's exchange, or an exchange of points. */
export type Call = "exchange" | "points" | "page" | "match";

/**
 * Whether `reason` says the call was refused by a rule, so that nothing
 * happened and nothing will: a new click may start afresh. Any other
 * failure (busy, timed out, cut off) may hide an exchange under way, which
 * only a retry under the same idempotency key can settle.
 */
export function definitelyRefused(reason: unknown): boolean {
  const code = ConnectError.from(reason).code;
  return [Code.FailedPrecondition, Code.NotFound, Code.InvalidArgument, Code.PermissionDenied, Code.AlreadyExists, Code.OutOfRange].includes(code);
}

/** The refusal of an exchange of points, in words. */
function pointsRefusal(raw: string): string {
  const message = raw.toLowerCase();
  // The wallet says "player-1 has 120 points; SNOW-SLED costs 500".
  const short = /has (\d+) points; .* costs (\d+)/.exec(raw);
  if (short) return `Not enough points: you have ${short[1]} pts and that gift costs ${short[2]} pts.`;
  if (message.includes("out of stock")) return "Sorry, that gift is out of stock. Pick another one.";
  if (message.includes("no longer exchanged") || message.includes("ended at")) return "That gift is no longer offered: its event has ended.";
  if (message.includes("not exchanged before") || message.includes("opens at")) return "That gift is not offered yet: its event has not started.";
  return "That cannot be done right now. Your points are unchanged.";
}

/** A player's reading of `reason`, a failed call of the page (`what` names it: "exchange"). */
export function explain(reason: unknown, what: Call = "page"): Explanation {
  const error = ConnectError.from(reason);
  const message = error.rawMessage.toLowerCase();
  const say = (text: string, consequence: Consequence = "none") => ({ text, consequence });
  if (what === "points" && error.code === Code.Unavailable) {
    return say("The gift exchange is busy right now. Please try again later: trying again never orders twice.");
  }
  if (what === "points" && error.code === Code.FailedPrecondition) return say(pointsRefusal(error.rawMessage));
  switch (error.code) {
    case Code.Unauthenticated:
      return say("Your session has ended. Please sign in again.", "sign-in");
    case Code.PermissionDenied:
      return say("This page belongs to another player: you can only see your own.", "stop");
    case Code.Unavailable:
      return what === "exchange"
        ? say(`The gift exchange is busy right now and your reward is unchanged. ${later(waitSeconds(error))}`)
        : say(`The game's rewards are taking a break. ${later(waitSeconds(error))}`);
    case Code.ResourceExhausted:
      return say(`You are going a bit fast. ${later(waitSeconds(error))}`);
    case Code.FailedPrecondition:
      if (message.includes("already exchanged")) return say("You already exchanged this reward.");
      if (message.includes("out of stock")) return say("Sorry, that gift is out of stock. Pick another one.");
      if (message.includes("not enough points")) return say("This reward has not enough points for that gift.");
      if (message.includes("being exchanged")) return say("This reward is being exchanged. Wait a moment.");
      return say("That cannot be done right now.");
    case Code.NotFound:
      return what === "exchange" || what === "points"
        ? say("That gift or reward is no longer offered.")
        : say("We could not find that. Please reload the page.");
    case Code.AlreadyExists:
      return say("That was done already.");
    case Code.DeadlineExceeded:
    case Code.Canceled:
    case Code.Aborted:
      return say(`That took too long. ${later(waitSeconds(error))}`);
    default:
      return say(`Something went wrong on our side. ${later(waitSeconds(error))}`);
  }
}
