// Exercise the Templates API with the official postmark client: the ServerClient on one
// server (create, edit, list with filters, get, validate, delete) and the AccountClient
// pushing that server's templates to another (dry run, then for real).
//
// Env: PW_HOST, PW_SERVER_TOKEN, PW_ACCOUNT_TOKEN, PW_SOURCE_ID, PW_DESTINATION_ID,
// PW_OTHER_ACCOUNT_SERVER_ID (a server of another account), optional PW_TRACE=1.
// Prints one JSON object on stdout; exit 0 unless a step failed without an HTTP response.
import { postmark, POSTMARK_VERSION, requireEnv, clientOptions, Runner } from "./lib.mjs";

async function main() {
  const host = requireEnv("PW_HOST");
  const trace = process.env.PW_TRACE ? [] : null;
  const server = new postmark.ServerClient(requireEnv("PW_SERVER_TOKEN"), clientOptions(host, trace));
  const account = new postmark.AccountClient(requireEnv("PW_ACCOUNT_TOKEN"), clientOptions(host, trace));
  const source = Number(requireEnv("PW_SOURCE_ID"));
  const destination = Number(requireEnv("PW_DESTINATION_ID"));
  const foreign = Number(requireEnv("PW_OTHER_ACCOUNT_SERVER_ID"));
  const run = new Runner();

  await run.step("create_layout", () =>
    server.createTemplate({
      Name: "Node layout",
      Alias: "node-layout",
      TemplateType: postmark.Models.TemplateTypes.Layout,
      HtmlBody: "<header>{{brand}}</header>{{{ @content }}}",
      TextBody: "{{brand}}\n{{{ @content }}}",
    }),
  );
  await run.step("create_template", () =>
    server.createTemplate({
      Name: "Node welcome",
      Alias: "node-welcome",
      Subject: "Welcome {{name}}",
      HtmlBody: "<p>Hello {{name}}</p>",
      TextBody: "Hello {{name}}",
      LayoutTemplate: "node-layout",
    }),
  );
  await run.step("create_duplicate_alias", () =>
    server.createTemplate({ Name: "Again", Alias: "node-welcome", Subject: "S", TextBody: "T" }),
  );
  await run.step("create_layout_without_placeholder", () =>
    server.createTemplate({ Name: "Broken", TemplateType: "Layout", HtmlBody: "<p>no content</p>" }),
  );
  await run.step("edit_template", () => server.editTemplate("node-welcome", { Name: "Node welcome, edited" }));
  await run.step("edit_nothing", () => server.editTemplate("node-welcome", {}));
  await run.step("get_templates", () => server.getTemplates());
  await run.step("get_layouts", () => server.getTemplates({ count: 10, offset: 0, templateType: "Layout" }));
  await run.step("get_in_layout", () =>
    server.getTemplates(new postmark.Models.TemplateFilteringParameters(10, 0, undefined, "node-layout")),
  );
  await run.step("get_template", () => server.getTemplate(run.results.create_template.TemplateId));
  await run.step("get_by_alias", () => server.getTemplate("node-welcome"));
  await run.step("get_unknown", () => server.getTemplate(987654));
  await run.step("validate", () =>
    server.validateTemplate({
      Subject: "Hi {{name}}",
      HtmlBody: "<p>{{name}}</p>{{#each items}}<i>{{title}}</i>{{/each}}",
      TextBody: "{{#broken}}",
      TestRenderModel: { name: "<Ann>", items: [{ title: "one" }] },
      LayoutTemplate: "node-layout",
    }),
  );
  await run.step("push_dry_run", () =>
    account.pushTemplates({ SourceServerID: source, DestinationServerID: destination, PerformChanges: false }),
  );
  await run.step("push", () =>
    account.pushTemplates({ SourceServerID: source, DestinationServerID: destination, PerformChanges: true }),
  );
  await run.step("push_to_another_account", () =>
    account.pushTemplates({ SourceServerID: source, DestinationServerID: foreign, PerformChanges: true }),
  );
  await run.step("push_with_server_token", () =>
    new postmark.AccountClient(requireEnv("PW_SERVER_TOKEN"), clientOptions(host, null)).pushTemplates({
      SourceServerID: source,
      DestinationServerID: destination,
      PerformChanges: false,
    }),
  );
  await run.step("delete_layout_in_use", () => server.deleteTemplate("node-layout"));
  await run.step("delete_template", () => server.deleteTemplate(run.results.create_template.TemplateId));
  await run.step("get_deleted", () => server.getTemplate(run.results.create_template.TemplateId));
  await run.step("delete_layout", () => server.deleteTemplate("node-layout"));

  if (trace) {
    run.results.trace = trace;
  }
  run.finish({ meta: { postmark_version: POSTMARK_VERSION, host } });
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
