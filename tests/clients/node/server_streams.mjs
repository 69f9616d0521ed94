// Exercise the Server API /message-streams endpoints and a stream's suppressions with the
// official postmark client: list (type filter, archived or not), get, create, edit, archive,
// unarchive, then suppress, dump and delete addresses; each with one refused call.
//
// Env: PW_HOST, PW_SERVER_TOKEN, PW_TODAY (YYYY-MM-DD, UTC), optional PW_TRACE=1.
// Prints one JSON object on stdout; exit 0 unless a step failed without an HTTP response.
import { postmark, POSTMARK_VERSION, requireEnv, clientOptions, Runner } from "./lib.mjs";

const STREAM = "node-news";

async function streams(client, run) {
  await run.step("get_streams", () => client.getMessageStreams());
  await run.step("create_stream", () =>
    client.createMessageStream(
      new postmark.Models.CreateMessageStreamRequest(STREAM, "Node News", "Broadcasts", "From postmark.js", {
        UnsubscribeHandlingType: postmark.Models.UnsubscribeHandlingTypes.Postmark,
      }),
    ),
  );
  await run.step("create_inbound", () =>
    client.createMessageStream({ ID: "more-inbound", Name: "Another", MessageStreamType: "Inbound" }),
  );
  await run.step("get_stream", () => client.getMessageStream(STREAM));
  await run.step("get_unknown", () => client.getMessageStream("no-such-stream"));
  await run.step("edit_stream", () =>
    client.editMessageStream(STREAM, new postmark.Models.UpdateMessageStreamRequest("Node Newsletter", "Edited")),
  );
  await run.step("edit_unsupported", () =>
    client.editMessageStream(STREAM, {
      SubscriptionManagementConfiguration: { UnsubscribeHandlingType: postmark.Models.UnsubscribeHandlingTypes.None },
    }),
  );
  await run.step("get_transactional", () => client.getMessageStreams({ messageStreamType: "Transactional" }));
  await run.step("get_bad_type", () => client.getMessageStreams({ messageStreamType: "Outbound" }));
  await run.step("archive_stream", () => client.archiveMessageStream(STREAM));
  await run.step("archive_default", () => client.archiveMessageStream("outbound"));
  await run.step("get_without_archived", () => client.getMessageStreams({ includeArchivedStreams: false }));
  await run.step("get_broadcasts_with_archived", () =>
    client.getMessageStreams({ messageStreamType: "Broadcasts", includeArchivedStreams: true }),
  );
  await run.step("unarchive_stream", () => client.unarchiveMessageStream(STREAM));
  await run.step("unarchive_unknown", () => client.unarchiveMessageStream("no-such-stream"));
}

async function suppressions(client, run, today) {
  const addresses = (...emails) => ({ Suppressions: emails.map((EmailAddress) => ({ EmailAddress })) });
  const many = Array.from({ length: 51 }, (_, n) => `user${n}@example.com`);
  await run.step("create_suppressions", () =>
    client.createSuppressions(STREAM, addresses("Reader@Example.com", "other@example.com", "not-an-address")),
  );
  await run.step("create_too_many", () => client.createSuppressions(STREAM, addresses(...many)));
  await run.step("get_suppressions", () => client.getSuppressions(STREAM));
  await run.step("get_suppressions_filtered", () =>
    client.getSuppressions(
      STREAM,
      new postmark.Models.SuppressionFilteringParameters(
        10,
        0,
        postmark.Models.SuppressionReason.ManualSuppression,
        postmark.Models.SuppressionOrigin.Customer,
        "reader@example.com",
        today,
        today,
      ),
    ),
  );
  await run.step("get_suppressions_bad_reason", () => client.getSuppressions(STREAM, { suppressionReason: "Bounced" }));
  await run.step("delete_suppressions", () =>
    client.deleteSuppressions(STREAM, addresses("reader@example.com", "never@example.com")),
  );
  await run.step("delete_unknown_stream", () =>
    client.deleteSuppressions("no-such-stream", addresses("reader@example.com")),
  );
  await run.step("get_after_delete", () => client.getSuppressions(STREAM));
}

async function main() {
  const host = requireEnv("PW_HOST");
  const token = requireEnv("PW_SERVER_TOKEN");
  const today = requireEnv("PW_TODAY");
  const trace = process.env.PW_TRACE ? [] : null;

  const client = new postmark.ServerClient(token, clientOptions(host, trace));
  const run = new Runner();
  await streams(client, run);
  await suppressions(client, run, today);

  if (trace) {
    run.results.trace = trace;
  }
  run.finish({ meta: { postmark_version: POSTMARK_VERSION, host } });
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
