// Exercise the Account API /servers endpoints with the official postmark client.
//
// Env: PW_HOST (e.g. "127.0.0.1:8025"), PW_ACCOUNT_TOKEN, optional PW_NAME,
// optional PW_TRACE=1 (adds a "trace" list of the requests the client sent).
// Prints one JSON object on stdout; exit 0 unless a step failed without an
// HTTP response (network failure, timeout, unexpected exception).
import { postmark, POSTMARK_VERSION, requireEnv, clientOptions, Runner } from "./lib.mjs";

const BAD_TOKEN = "00000000-0000-0000-0000-000000000000";

async function main() {
  const host = requireEnv("PW_HOST");
  const token = requireEnv("PW_ACCOUNT_TOKEN");
  const name = process.env.PW_NAME || `node-client-${Date.now()}`;
  const trace = process.env.PW_TRACE ? [] : null;

  const client = new postmark.AccountClient(token, clientOptions(host, trace));
  const run = new Runner();

  await run.step("get_servers", () => client.getServers({ count: 100, offset: 0 }));

  const created = await run.step("create_server", () =>
    client.createServer({ Name: name, Color: "Green", TrackLinks: "HtmlOnly" }),
  );
  const id = created.ok && created.value ? created.value.ID : undefined;

  if (id !== undefined) {
    await run.step("get_server", () => client.getServer(id));
    await run.step("edit_server", () => client.editServer(id, { Color: "red" }));
  } else {
    run.skip("get_server", "create_server failed");
    run.skip("edit_server", "create_server failed");
  }

  await run.step("get_servers_by_name", () =>
    client.getServers({ count: 10, offset: 0, name }),
  );

  const dup = await run.step("create_server_duplicate", () =>
    client.createServer({ Name: name, Color: "Green", TrackLinks: "HtmlOnly" }),
  );
  if (dup.ok && dup.value && dup.value.ID !== undefined && dup.value.ID !== id) {
    // The duplicate should have been refused; remove it so runs stay repeatable.
    await run.step("create_server_duplicate_cleanup", () => client.deleteServer(dup.value.ID));
  }

  if (id !== undefined) {
    await run.step("delete_server", () => client.deleteServer(id));
  } else {
    run.skip("delete_server", "create_server failed");
  }

  const badClient = new postmark.AccountClient(BAD_TOKEN, clientOptions(host, trace));
  await run.step("get_server_bad_token", () => badClient.getServer(id !== undefined ? id : 1));

  const extra = { meta: { postmark_version: POSTMARK_VERSION, host, name, server_id: id ?? null } };
  if (trace) {
    run.results.trace = trace;
  }
  run.finish(extra);
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
