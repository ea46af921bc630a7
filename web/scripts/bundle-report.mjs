// Prints the gzip size of every JavaScript and CSS file of the build, and the total of what
// the first page load fetches: the entry script and CSS named in dist/index.html plus the
// chunks they import statically (modulepreload). Fails when that total passes the budget.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_KB = 250;
const dist = new URL("../dist/", import.meta.url).pathname;
const assets = join(dist, "assets");
const html = readFileSync(join(dist, "index.html"), "utf8");

const initial = new Set(
  [...html.matchAll(/(?:src|href)="\/assets\/([^"]+\.(?:js|css))"/g)].map((m) => m[1]),
);

const kb = (n) => (n / 1024).toFixed(1).padStart(7);
const rows = readdirSync(assets)
  .filter((f) => f.endsWith(".js") || f.endsWith(".css"))
  .map((f) => {
    const buf = readFileSync(join(assets, f));
    return { f, raw: buf.length, gz: gzipSync(buf, { level: 9 }).length, initial: initial.has(f) };
  })
  .sort((a, b) => Number(b.initial) - Number(a.initial) || b.gz - a.gz);

console.log("\nbundle (KB)      raw     gzip  file");
for (const r of rows) {
  console.log(`${r.initial ? "  initial " : "  lazy    "} ${kb(r.raw)}  ${kb(r.gz)}  ${r.f}`);
}
const sum = (pred) => rows.filter(pred).reduce((a, r) => a + r.gz, 0);
const initialJS = sum((r) => r.initial && r.f.endsWith(".js"));
const initialCSS = sum((r) => r.initial && r.f.endsWith(".css"));
const lazyJS = sum((r) => !r.initial && r.f.endsWith(".js"));
console.log(`\ninitial JavaScript: ${kb(initialJS).trim()} KB gzipped (budget ${BUDGET_KB} KB)`);
console.log(`initial CSS:        ${kb(initialCSS).trim()} KB gzipped`);
console.log(`lazy route chunks:  ${kb(lazyJS).trim()} KB gzipped in ${rows.filter((r) => !r.initial && r.f.endsWith(".js")).length} files`);
if (initialJS / 1024 > BUDGET_KB) {
  console.error(`bundle: initial JavaScript is over the ${BUDGET_KB} KB budget`);
  process.exit(1);
}
