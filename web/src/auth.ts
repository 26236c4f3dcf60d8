// Who the player is: a bearer token for every call, from the identity
// provider the gateway names in /web-config.json — OpenID Connect in
// production, the development issuer under `./dev up`. No key lives here.

export interface Session {
  customerId: string;
  token: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

export type Settings =
  | { signIn: "development" }
  | { signIn: "oidc"; oidc: { authority: string; clientId: string; scope: string } }
  | { signIn: "none" };

const STORED = "my-page-session";

export async function settings(): Promise<Settings> {
  const response = await fetch("/web-config.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`the page's settings could not be read (${response.status})`);
  return (await response.json()) as Settings;
}

/** The session kept for this tab, while its token lasts. */
export function stored(): Session | undefined {
  try {
    const session = JSON.parse(sessionStorage.getItem(STORED) ?? "null") as Session | null;
    return session && session.expiresAt > Date.now() / 1000 ? session : undefined;
  } catch {
    return undefined;
  }
}

export function keep(session: Session | undefined): void {
  if (session) sessionStorage.setItem(STORED, JSON.stringify(session));
  else sessionStorage.removeItem(STORED);
}

/** Development only: the gateway's development issuer signs a token for `customerId`. */
export async function devSignIn(customerId: string, lifetimeSecs?: number): Promise<Session> {
  const response = await fetch("/dev/sign-in", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ customer_id: customerId, lifetime_secs: lifetimeSecs }),
  });
  const body = (await response.json()) as { token?: string; customer_id?: string; expires_at?: number; error?: string };
  if (!response.ok || !body.token || !body.customer_id || !body.expires_at) {
    throw new Error(body.error ?? "the development sign-in failed");
  }
  return { customerId: body.customer_id, token: body.token, expiresAt: body.expires_at };
}

type Oidc = Extract<Settings, { signIn: "oidc" }>["oidc"];

// Loaded only when the provider is OpenID Connect: development pages never fetch it.
async function manager(oidc: Oidc) {
  const { UserManager, WebStorageStateStore } = await import("oidc-client-ts");
  return new UserManager({
    authority: oidc.authority,
    client_id: oidc.clientId,
    scope: oidc.scope,
    redirect_uri: `${location.origin}/`,
    response_type: "code",
    userStore: new WebStorageStateStore({ store: sessionStorage }),
  });
}

/** Sends the player to the provider; the page is opened again with a code. */
export async function oidcSignIn(oidc: Oidc): Promise<void> {
  await (await manager(oidc)).signinRedirect();
}

/** The session the provider sent back (the `code` in the address), if any. */
export async function oidcReturn(oidc: Oidc): Promise<Session | undefined> {
  const query = new URLSearchParams(location.search);
  if (!query.has("code") || !query.has("state")) return undefined;
  const user = await (await manager(oidc)).signinRedirectCallback();
  history.replaceState(null, "", "/");
  // The access token is what the gateway verifies; its subject is the customer id.
  return { customerId: user.profile.sub, token: user.access_token, expiresAt: user.expires_at ?? 0 };
}
