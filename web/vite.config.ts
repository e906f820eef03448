import tailwindcss from "@tailwindcss/vite";
import { defineConfig } from "vitest/config";

// In development the page runs on Vite's server and its gRPC-web calls are proxied to the
// service (`cargo run`), so the browser sees one origin and the service needs no CORS setting.
const service = process.env.LIBRARY_URL ?? "http://127.0.0.1:50051";

export default defineConfig({
  plugins: [tailwindcss()],
  server: {
    proxy: {
      "/audiohm.library.v1.LibraryService": { target: service, changeOrigin: true },
    },
  },
  build: {
    // No inline scripts or styles, so the service can send a strict Content-Security-Policy.
    assetsInlineLimit: 0,
  },
  test: {
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["src/**/*.test.ts"], environment: "node" },
      },
      {
        extends: true,
        test: {
          name: "e2e",
          include: ["e2e/**/*.test.ts"],
          environment: "node",
          // Builds (if needed) and starts the service, then drives a real Chromium.
          testTimeout: 120_000,
          // What the page shows may take a while on a loaded CI machine; waiting is not slower
          // when it is quick.
          expect: { poll: { timeout: 15_000, interval: 50 } },
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
