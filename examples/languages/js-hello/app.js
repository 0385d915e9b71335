// js-hello: a VyomaOS app in JavaScript. It prints its arguments and the variables it was
// given, then ends; `log js-hello` in the console shows what it printed.
import { getArguments, getEnvironment } from "wasi:cli/environment@0.2.12";

export const run = {
  run() {
    console.log(`hello from js-hello (JavaScript), args ${JSON.stringify(getArguments())}`);
    for (const [k, v] of getEnvironment()) console.log(`${k}=${v}`);
  },
};
