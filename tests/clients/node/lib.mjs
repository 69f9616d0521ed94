// Shared helpers for the postmark client scripts in this directory.
import { createRequire } from "node:module";
import * as postmark from "postmark";

const require = createRequire(import.meta.url);
export const POSTMARK_VERSION = require("postmark/package.json").version;
export { postmark };

export function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`missing required environment variable ${name}\n`);
    process.exit(2);
  }
  return value;
}

// Options used to aim the official client at a local postwarden instance.
// With PW_TRACE=1 every request the client sends is recorded (method, url,
// headers, body) by wrapping the global fetch; the client code is unchanged.
export function clientOptions(host, trace) {
  const options = { useHttps: false, requestHost: host, timeout: 10 };
  if (trace) {
    options.fetch = async (input, init = {}) => {
      const entry = {
        method: init.method,
        url: String(input),
        headers: { ...(init.headers || {}) },
        body: init.body === undefined ? null : init.body,
      };
      trace.push(entry);
      const response = await fetch(input, init);
      entry.status = response.status;
      return response;
    };
  }
  return options;
}

export function describeError(err) {
  return {
    error: {
      name: err && err.name,
      statusCode: err && err.statusCode !== undefined ? err.statusCode : null,
      code: err && err.code !== undefined ? err.code : null,
      message: err && err.message,
    },
  };
}

// An error is "expected" when the server answered with an HTTP status: the
// client then raises a PostmarkError subclass with statusCode > 0. Network
// failures and timeouts come back as PostmarkError with statusCode 0.
function isHttpError(err) {
  return err instanceof postmark.Errors.PostmarkError && err.statusCode > 0;
}

export class Runner {
  constructor() {
    this.results = {};
    this.unexpected = [];
  }

  async step(name, fn) {
    try {
      const value = await fn();
      this.results[name] = value === undefined ? null : value;
      return { ok: true, value };
    } catch (err) {
      this.results[name] = describeError(err);
      if (!isHttpError(err)) {
        this.unexpected.push(name);
      }
      return { ok: false, error: err };
    }
  }

  skip(name, reason) {
    this.results[name] = { skipped: reason };
  }

  finish(extra = {}) {
    const out = { ...extra, ...this.results };
    if (this.unexpected.length) {
      out.unexpected = this.unexpected;
    }
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exitCode = this.unexpected.length ? 1 : 0;
  }
}
