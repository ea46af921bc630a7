// Empties dist/ before a build except placeholder.html, which is committed: web/embed.go
// serves it when the dashboard was not built, so Go-only builds need no Node.
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const dist = new URL("../dist/", import.meta.url).pathname;
for (const name of readdirSync(dist)) {
  if (name !== "placeholder.html") rmSync(join(dist, name), { recursive: true, force: true });
}
