// js-ipc: a VyomaOS app in JavaScript that answers requests over IPC. `@js-ipc: hi` in
// the console asks it; when its first argument names another app (`args = ["echo"]` in
// app.toml, and that app in `[capabilities.ipc] send`), it asks that app first and
// includes the answer. Plain messages are printed (`log js-ipc`).
import { recv, request, reply } from "vyoma:app/ipc@0.1.0";
import { getArguments } from "wasi:cli/environment@0.2.12";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// An ipc error (thrown with its variant as the payload) as text.
function describe(e) {
  const v = e?.payload ?? e;
  if (v?.tag === undefined) return String(e);
  return v.val === undefined ? v.tag : `${v.tag}: ${v.val}`;
}

export const run = {
  run() {
    const peer = getArguments()[1];
    console.log("js-ipc answers requests");
    for (;;) {
      const m = recv(undefined);
      if (m === undefined) continue;
      const text = decoder.decode(m.body);
      if (m.replyToken === undefined) {
        console.log(`message from ${m.sender}: ${text}`);
        continue;
      }
      let answer = `js-ipc heard "${text}"`;
      if (peer) {
        try {
          answer += `; ${peer} said "${decoder.decode(request(peer, m.body, 1000))}"`;
        } catch (e) {
          answer += `; ${peer} did not answer: ${describe(e)}`;
        }
      }
      try {
        reply(m.replyToken, encoder.encode(answer));
      } catch (e) {
        console.error(`cannot answer: ${describe(e)}`);
      }
    }
  },
};
