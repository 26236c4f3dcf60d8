// The page's build. `vite build` is what the chart serves; `vite build --mode
// development` (npm run build:dev, what `./dev up` serves) adds the
// development sign-in and the "play a match" control, which the production
// bundle does not contain at all (dead code, removed at build time).
import { defineConfig } from "vitest/config";

export default defineConfig(({ command, mode }) => {
  // The gateway the development server (`npm run dev`, port 5173) talks to:
  // gRPC-Web goes to it cross-origin (CORS, `GATEWAY_CORS_ORIGINS` under
  // `./dev up`); settings and the development sign-in go through the proxy.
  const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";
  return {
    define: {
      __DEV_BUILD__: JSON.stringify(mode === "development"),
      // Built pages call the gateway that served them.
      __GATEWAY__: command === "serve" ? JSON.stringify(gateway) : "location.origin",
    },
    build: { target: "es2022", sourcemap: false, minify: true, reportCompressedSize: false },
    server: {
      port: 5173,
      strictPort: true,
      proxy: { "/web-config.json": gateway, "/dev/sign-in": gateway },
    },
    test: { environment: "node", include: ["src/**/*.test.ts"] },
  };
});
