// A thread of the runtime (runtime.js: Pool): its own instance of the kernels over the page's shared memory, doing
// its part of each parallel kernel call that the page's thread posts in the control words.
import { ARGUMENTS, CALL, COUNT, DONE, KERNEL, LISTENING, PARALLEL, SPIN_MS, WORDS } from "./runtime.js";

self.onmessage = ({ data: { module, memory, control, stack, part, parts } }) => {
  const { exports } = new WebAssembly.Instance(module, { env: { memory } });
  exports.__stack_pointer.value = stack; // a stack of its own
  const words = new Int32Array(memory.buffer, control, WORDS);
  let seen = Atomics.load(words, CALL);
  Atomics.add(words, LISTENING, 1);
  postMessage("listening");
  for (;;) {
    const since = performance.now();
    while (Atomics.load(words, CALL) === seen) { // spin while calls come close together, then sleep
      if (performance.now() - since > SPIN_MS) Atomics.wait(words, CALL, seen);
    }
    seen = Atomics.load(words, CALL);
    exports[PARALLEL[words[KERNEL]]](...words.subarray(ARGUMENTS, ARGUMENTS + words[COUNT]), part, parts);
    Atomics.add(words, DONE, 1);
  }
};
