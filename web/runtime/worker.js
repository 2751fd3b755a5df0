// A thread of the runtime (runtime.js: Pool): its own instance of the kernels over the page's shared memory, doing
// its part of each parallel kernel call that the page's thread posts in the control words.
import { PARALLEL, SPIN_MS } from "./runtime.js";

self.onmessage = ({ data: { module, memory, control, stack, part, parts } }) => {
  const { exports } = new WebAssembly.Instance(module, { env: { memory } });
  exports.__stack_pointer.value = stack; // a stack of its own
  const words = new Int32Array(memory.buffer, control, 32);
  let seen = Atomics.load(words, 0);
  postMessage("ready");
  for (;;) {
    const since = performance.now();
    while (Atomics.load(words, 0) === seen) { // spin while calls come close together, then sleep
      if (performance.now() - since > SPIN_MS) Atomics.wait(words, 0, seen);
    }
    seen = Atomics.load(words, 0);
    exports[PARALLEL[words[2]]](...words.subarray(4, 4 + words[3]), part, parts);
    Atomics.add(words, 1, 1);
  }
};
