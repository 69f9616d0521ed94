// Exercise the Account API /domains endpoints with the official postmark client, in two
// phases so that the caller can publish DNS records in between.
//
// Env: PW_HOST, PW_ACCOUNT_TOKEN, PW_PHASE ("create" or "verify"), PW_DOMAIN (the name),
// PW_DOMAIN_ID (verify phase), optional PW_TRACE=1.
// Prints one JSON object on stdout; exit 0 unless a step failed without an HTTP response.
import { postmark, POSTMARK_VERSION, requireEnv, clientOptions, Runner } from "./lib.mjs";

async function main() {
  const host = requireEnv("PW_HOST");
  const token = requireEnv("PW_ACCOUNT_TOKEN");
  const phase = requireEnv("PW_PHASE");
  const name = requireEnv("PW_DOMAIN");
  const trace = process.env.PW_TRACE ? [] : null;

  const client = new postmark.AccountClient(token, clientOptions(host, trace));
  const run = new Runner();

  if (phase === "create") {
    await run.step("create_domain", () => client.createDomain({ Name: name, ReturnPathDomain: `pm-bounces.${name}` }));
    await run.step("create_duplicate", () => client.createDomain({ Name: name }));
  } else {
    const id = Number(requireEnv("PW_DOMAIN_ID"));
    await run.step("verify_dkim", () => client.verifyDomainDKIM(id));
    await run.step("verify_return_path", () => client.verifyDomainReturnPath(id));
    await run.step("verify_spf", () => client.verifyDomainSPF(id));
    await run.step("rotate_dkim", () => client.rotateDomainDKIM(id));
    await run.step("rotate_dkim_again", () => client.rotateDomainDKIM(id));
    await run.step("get_domains", () => client.getDomains({ count: 10, offset: 0 }));
    await run.step("get_domain", () => client.getDomain(id));
    await run.step("delete_domain", () => client.deleteDomain(id));
    await run.step("get_deleted_domain", () => client.getDomain(id));
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
