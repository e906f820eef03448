// Reads what a pasted token says about itself, for display only: the service verifies it.

export interface TokenClaims {
  subject: string;
  expiresAt: Date | undefined;
}

/** The claims of a JWT, or a sentence saying why the text is not one. */
export function readToken(text: string): TokenClaims | string {
  const parts = text.trim().split(".");
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) {
    return "That does not look like a token: a token is three parts separated by dots. Paste the whole token.";
  }
  let claims: unknown;
  try {
    claims = JSON.parse(decodeBase64Url(parts[1] ?? ""));
  } catch {
    return "That token could not be read. Paste the whole token, without spaces or line breaks.";
  }
  if (typeof claims !== "object" || claims === null) {
    return "That token could not be read. Paste the whole token, without spaces or line breaks.";
  }
  const { sub, exp } = claims as { sub?: unknown; exp?: unknown };
  return {
    subject: typeof sub === "string" ? sub : "",
    expiresAt: typeof exp === "number" ? new Date(exp * 1000) : undefined,
  };
}

function decodeBase64Url(segment: string): string {
  const base64 = segment.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}
