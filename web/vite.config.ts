import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";
import { defineConfig } from "vite";

// The control plane the dev server forwards API calls to (`npm run dev`); see web/README.md.
const api = process.env.SKYPANEL_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react(), tailwindcss()],
  build: {
    outDir: "dist",
    // dist/placeholder.html is committed (web/embed.go serves it when the app was not
    // built), so the build must not wipe dist/: scripts/clean-dist.mjs removes the rest.
    emptyOutDir: false,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
    // The bundle report (scripts/bundle-report.mjs) prints gzip sizes instead.
    reportCompressedSize: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    port: 5173,
    strictPort: true,
    proxy: {
      // Every Connect RPC path starts with the proto package: /skypanel.<area>.v1.<Service>/<Method>.
      "^/skypanel\\.": { target: api, changeOrigin: false },
      "/healthz": api,
      "/readyz": api,
    },
  },
});
