// `npm run build`: compiles the runtime's kernels (runtime/kernels.c) to runtime/kernels.wasm with clang and
// lld for wasm32 (Debian's clang-19 and lld-19, or any clang that targets wasm32), no libc.
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const FLAGS = ["--target=wasm32", "-mcpu=mvp", "-msimd128", "-mbulk-memory", "-mnontrapping-fptoint", "-msign-ext",
               "-mmutable-globals", "-O3", "-nostdlib", "-Wall", "-Werror", "-Wl,--no-entry", "-Wl,--import-memory",
               "-Wl,--export=__heap_base", "-Wl,--strip-all", "-fuse-ld=lld"];
const compilers = [process.env.CC, "clang-19", "clang"].filter(Boolean);

const source = here("runtime/kernels.c"), output = here("runtime/kernels.wasm");
for (const cc of compilers) {
  try {
    execFileSync(cc, [...FLAGS, "-o", output, source], { stdio: ["ignore", "inherit", "pipe"] });
    console.log(`built ${output} (${statSync(output).size} bytes) with ${cc}`);
    process.exit(0);
  } catch (err) {
    if (err.code !== "ENOENT") { process.stderr.write(err.stderr || String(err)); process.exit(1); }
  }
}
console.error(`no clang found (tried ${compilers.join(", ")}): install clang-19 and lld-19 (Debian), or set CC`);
process.exit(1);
