// Writes a gzip copy beside every text asset of the built page, which the
// gateway serves to browsers that take gzip (it compresses nothing itself).
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, constants } from "node:zlib";

const root = process.argv[2] ?? "dist";
const compressible = /\.(html|js|css|json|svg|webmanifest|txt)$/;
let raw = 0;
let zipped = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (compressible.test(name)) {
      const bytes = readFileSync(path);
      const gz = gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION });
      writeFileSync(`${path}.gz`, gz);
      raw += bytes.length;
      zipped += gz.length;
    }
  }
}
walk(root);
console.log(`${root}: ${(raw / 1024).toFixed(1)} KiB, ${(zipped / 1024).toFixed(1)} KiB gzipped`);
