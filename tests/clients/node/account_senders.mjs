// Exercise the Account API /senders endpoints with the official postmark client, in two
// phases so that the caller can follow the mailed confirmation link in between.
//
// Env: PW_HOST, PW_ACCOUNT_TOKEN, PW_PHASE ("create" or "after"), PW_EMAIL,
// PW_SENDER_ID (after phase), optional PW_TRACE=1.
// Prints one JSON object on stdout; exit 0 unless a step failed without an HTTP response.
import { postmark, POSTMARK_VERSION, requireEnv, clientOptions, Runner } from "./lib.mjs";

async function main() {
  const host = requireEnv("PW_HOST");
  const token = requireEnv("PW_ACCOUNT_TOKEN");
  const phase = requireEnv("PW_PHASE");
  const email = requireEnv("PW_EMAIL");
  const trace = process.env.PW_TRACE ? [] : null;

  const client = new postmark.AccountClient(token, clientOptions(host, trace));
  const run = new Runner();

  if (phase === "create") {
    await run.step("create_signature", () => client.createSenderSignature({ FromEmail: email, Name: "Node Sender" }));
    await run.step("create_duplicate", () => client.createSenderSignature({ FromEmail: email, Name: "Again" }));
    await run.step("create_public", () => client.createSenderSignature({ FromEmail: "someone@gmail.com", Name: "X" }));
    await run.step("get_signatures", () => client.getSenderSignatures({ count: 10, offset: 0 }));
    await run.step("resend", () => client.resendSenderSignatureConfirmation(run.results.create_signature.ID));
  } else {
    const id = Number(requireEnv("PW_SENDER_ID"));
    await run.step("get_signature", () => client.getSenderSignature(id));
    await run.step("resend_confirmed", () => client.resendSenderSignatureConfirmation(id));
    await run.step("edit_signature", () => client.editSenderSignature(id, { Name: "Renamed" }));
    await run.step("new_dkim", () => client.requestNewDKIMForSenderSignature(id));
    await run.step("delete_signature", () => client.deleteSenderSignature(id));
    await run.step("get_deleted", () => client.getSenderSignature(id));
  }

  if (trace) {
    run.results.trace = trace;
  }
  run.finish({ meta: { postmark_version: POSTMARK_VERSION, host } });
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
