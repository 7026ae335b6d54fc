// Drives our API with the UNMODIFIED npm @trigger.dev/sdk (v4), as a Node backend would:
// only TRIGGER_API_URL / TRIGGER_SECRET_KEY point at us. Prints one JSON line of results.
import { configure, tasks, runs, batch, wait, schedules } from "@trigger.dev/sdk";

configure({ baseURL: process.env.TRIGGER_API_URL, secretKey: process.env.TRIGGER_SECRET_KEY });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const poll = (id) => runs.poll(id, { pollIntervalMs: 150 });
const out = {};

// 1. trigger a Python task by id, poll to COMPLETED with its output (a Date stays a Date)
const h = await tasks.trigger(
  "t-echo",
  { hello: "world", when: new Date("2024-01-02T03:04:05.000Z"), n: 1 },
  { tags: ["sdk", "org:1"], metadata: { source: "node" } },
);
const done = await poll(h.id);
out.trigger = {
  id: h.id, status: done.status, output: done.output, tags: done.tags,
  token: typeof h.publicAccessToken, isSuccess: done.isSuccess, attemptCount: done.attemptCount,
};

// 2. batch-trigger 10 runs (the two-phase streaming batch of SDK ≥ 4.3.1)
const b = await tasks.batchTrigger("t-echo", Array.from({ length: 10 }, (_, i) => ({ payload: { i } })));
const br = await batch.retrieve(b.batchId);
const outputs = [];
for (const id of br.runs) outputs.push((await poll(id)).output);
out.batch = { id: b.batchId, runCount: b.runCount, runs: br.runs.length, status: br.status, outputs };

// 3. cancel a delayed run
const d = await tasks.trigger("t-echo", { later: true }, { delay: "1h" });
const before = await runs.retrieve(d.id);
await runs.cancel(d.id);
const after = await runs.retrieve(d.id);
out.cancel = { before: before.status, after: after.status, isCancelled: after.isCancelled };

// 4. replay a failed run
const f = await tasks.trigger("t-abort", {});
const failed = await poll(f.id);
const replay = await runs.replay(f.id);
const replayed = await poll(replay.id);
out.replay = {
  original: failed.status, error: failed.error?.message, isFailed: failed.isFailed,
  replayId: replay.id, replayStatus: replayed.status, replayTask: replayed.taskIdentifier,
};

// 5. complete a wait token a run is waiting on
const token = await wait.createToken({ timeout: "10m", tags: ["sdk"] });
const w = await tasks.trigger("dash-wait-token", { tokenId: token.id });
let waiting;
for (let i = 0; i < 200; i++) {
  waiting = await runs.retrieve(w.id);
  if (waiting.status === "WAITING") break;
  await sleep(100);
}
await wait.completeToken(token, { approved: true, by: "node" });
const resumed = await poll(w.id);
const tokenAfter = await wait.retrieveToken(token.id);
out.token = {
  id: token.id, url: token.url, waitingSeen: waiting.status, status: resumed.status,
  output: resumed.output, tokenStatus: tokenAfter.status, tokenOutput: tokenAfter.output,
};

// 6. create a schedule (and read it back)
const s = await schedules.create({
  task: "dash-scheduled", cron: "0 9 * * *", timezone: "UTC", deduplicationKey: "sdk-daily",
  externalId: "org_1",
});
const again = await schedules.create({
  task: "dash-scheduled", cron: "0 10 * * *", timezone: "UTC", deduplicationKey: "sdk-daily",
});
const list = await schedules.list();
const off = await schedules.deactivate(s.id);
out.schedule = {
  id: s.id, sameId: again.id === s.id, cron: again.generator.expression, active: s.active,
  nextRun: s.nextRun, listed: list.data.map((x) => x.id), deactivated: off.active === false,
};

// 7. list with filters, and the errors the SDK maps to its classes
const page = await runs.list({ taskIdentifier: "t-echo", tag: "sdk", limit: 5 });
out.list = { n: page.data.length, first: page.data[0]?.id, statuses: page.data.map((r) => r.status) };
try { await tasks.trigger("no-such-task", {}); } catch (e) {
  out.unknownTask = { status: e.status, name: e.constructor.name, message: e.message };
}
try { await runs.retrieve("run_0000000000000000000000000x"); } catch (e) {
  out.unknownRun = { status: e.status, name: e.constructor.name };
}
try {
  await schedules.create({ task: "dash-scheduled", cron: "not a cron", deduplicationKey: "bad" });
} catch (e) {
  out.badCron = { status: e.status, message: e.message };
}
console.log(JSON.stringify(out));
