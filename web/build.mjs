// `npm run build`: compiles the runtime's kernels (runtime/kernels.c) with clang and lld for wasm32 (Debian's
// clang-19 and lld-19, or any clang that targets wasm32), no libc: runtime/kernels.wasm, and
// runtime/kernels-threads.wasm on a shared memory for a cross-origin-isolated page's threads.
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const FLAGS = ["--target=wasm32", "-mcpu=mvp", "-msimd128", "-mbulk-memory", "-mnontrapping-fptoint", "-msign-ext",
               "-mmutable-globals", "-O3", "-nostdlib", "-Wall", "-Werror", "-Wl,--no-entry", "-Wl,--import-memory",
               "-Wl,--export=__heap_base", "-Wl,--strip-all", "-fuse-ld=lld"];
const compilers = [process.env.CC, "clang-19", "clang"].filter(Boolean);

const BUILDS = { "runtime/kernels.wasm": [],
                 "runtime/kernels-threads.wasm": ["-matomics", "-Wl,--shared-memory", "-Wl,--max-memory=2147483648",
                                                  "-Wl,--export=__stack_pointer"] };

const source = here("runtime/kernels.c");
for (const cc of compilers) {
  try {
    for (const [file, extra] of Object.entries(BUILDS)) {
      execFileSync(cc, [...FLAGS, ...extra, "-o", here(file), source], { stdio: ["ignore", "inherit", "pipe"] });
      console.log(`built ${file} (${statSync(here(file)).size} bytes) with ${cc}`);
    }
    process.exit(0);
  } catch (err) {
    if (err.code !== "ENOENT") { process.stderr.write(err.stderr || String(err)); process.exit(1); }
  }
}
console.error(`no clang found (tried ${compilers.join(", ")}): install clang-19 and lld-19 (Debian), or set CC`);
process.exit(1);
