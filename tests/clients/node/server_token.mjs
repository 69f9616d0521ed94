// Exercise the Server API /server endpoint with the official postmark client.
//
// Env: PW_HOST (e.g. "127.0.0.1:8025"), PW_SERVER_TOKEN, optional PW_TRACE=1.
// Prints one JSON object on stdout; exit 0 unless a step failed without an
// HTTP response (network failure, timeout, unexpected exception).
import { postmark, POSTMARK_VERSION, requireEnv, clientOptions, Runner } from "./lib.mjs";

async function main() {
  const host = requireEnv("PW_HOST");
  const token = requireEnv("PW_SERVER_TOKEN");
  const trace = process.env.PW_TRACE ? [] : null;

  const client = new postmark.ServerClient(token, clientOptions(host, trace));
  const run = new Runner();

  await run.step("get_server", () => client.getServer());
  await run.step("edit_server", () => client.editServer({ TrackOpens: true }));
  await run.step("get_server_after_edit", () => client.getServer());

  if (trace) {
    run.results.trace = trace;
  }
  run.finish({ meta: { postmark_version: POSTMARK_VERSION, host } });
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
