import { expect, test } from "vitest";

import { readToken } from "./token.ts";

const encode = (value: object) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

test("a token's subject and expiry are read for display", () => {
  const token = `${encode({ alg: "HS256" })}.${encode({ sub: "0b9c5ae4-4d1e-4b8a-9b51-2f4fe0d1f001", exp: 1_800_000_000 })}.sig`;
  expect(readToken(`  ${token}\n`)).toEqual({
    subject: "0b9c5ae4-4d1e-4b8a-9b51-2f4fe0d1f001",
    expiresAt: new Date(1_800_000_000_000),
  });
});

test("text that is not a token gets a sentence saying so", () => {
  expect(readToken("hello")).toMatch(/three parts separated by dots/);
  expect(readToken("a.%%%.c")).toMatch(/could not be read/);
});
