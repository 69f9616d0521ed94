// Exercise the Server API /webhooks endpoints with the official postmark client: create,
// list (all streams, then one), get, a partial edit of one trigger, delete, and refusals.
//
// Env: PW_HOST, PW_SERVER_TOKEN, PW_HOOK_URL (a public http(s) URL), optional PW_TRACE=1.
// Prints one JSON object on stdout; exit 0 unless a step failed without an HTTP response.
import { postmark, POSTMARK_VERSION, requireEnv, clientOptions, Runner } from "./lib.mjs";

const UNKNOWN_TOKEN = "00000000-0000-0000-0000-000000000000";

async function main() {
  const host = requireEnv("PW_HOST");
  const token = requireEnv("PW_SERVER_TOKEN");
  const hookUrl = requireEnv("PW_HOOK_URL");
  const trace = process.env.PW_TRACE ? [] : null;

  const client = new postmark.ServerClient(token, clientOptions(host, trace));
  const run = new Runner();

  const created = await run.step("create_webhook", () =>
    client.createWebhook({
      Url: hookUrl,
      MessageStream: "outbound",
      HttpAuth: { Username: "node", Password: "node-secret" },
      HttpHeaders: [{ Name: "X-Source", Value: "postmark.js" }],
      Triggers: { Open: { Enabled: true, PostFirstOpenOnly: true }, Bounce: { Enabled: true } },
    }),
  );
  await run.step("create_broadcast_webhook", () =>
    client.createWebhook({
      Url: `${hookUrl}/broadcast`,
      MessageStream: "broadcast",
      Triggers: { SubscriptionChange: { Enabled: true } },
    }),
  );
  await run.step("get_webhooks", () => client.getWebhooks());
  await run.step("get_webhooks_broadcast", () => client.getWebhooks({ messageStream: "broadcast" }));
  await run.step("get_webhooks_unknown_stream", () => client.getWebhooks({ messageStream: "no-such-stream" }));
  await run.step("create_private_url", () => client.createWebhook({ Url: "http://127.0.0.1:9/hook" }));
  await run.step("create_on_inbound", () => client.createWebhook({ Url: hookUrl, MessageStream: "inbound" }));

  if (created.ok) {
    const id = created.value.ID;
    await run.step("get_webhook", () => client.getWebhook(id));
    await run.step("edit_webhook", () => client.editWebhook(id, { Triggers: { Click: { Enabled: true } } }));
    await run.step("edit_stream", () => client.editWebhook(id, { MessageStream: "broadcast" }));
    await run.step("delete_webhook", () => client.deleteWebhook(id));
    await run.step("get_deleted", () => client.getWebhook(id));
  } else {
    for (const name of ["get_webhook", "edit_webhook", "edit_stream", "delete_webhook", "get_deleted"]) {
      run.skip(name, "create_webhook failed");
    }
  }

  const stranger = new postmark.ServerClient(UNKNOWN_TOKEN, clientOptions(host, trace));
  await run.step("get_webhooks_bad_token", () => stranger.getWebhooks());

  if (trace) {
    run.results.trace = trace;
  }
  run.finish({ meta: { postmark_version: POSTMARK_VERSION, host } });
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
