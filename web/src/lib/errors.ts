// Turning API errors into words for people: a message for a toast or banner, and per-field
// messages from the google.rpc.BadRequest detail the API attaches to invalid_argument.
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";

/** FieldErrors maps a request field (proto name, e.g. "new_password") to what is wrong with it. */
export type FieldErrors = Record<string, string>;

const badRequestType = "google.rpc.BadRequest";

// BadRequest { repeated FieldViolation field_violations = 1; }
// FieldViolation { string field = 1; string description = 2; }
// Decoded by hand: the schema is not in the generated code and two strings do not justify it.
function decodeBadRequest(bytes: Uint8Array): FieldErrors {
  const out: FieldErrors = {};
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1 && wt === WireType.LengthDelimited) {
      const v = new BinaryReader(r.bytes());
      let field = "";
      let desc = "";
      while (v.pos < v.len) {
        const [fno, fwt] = v.tag();
        if (fno === 1 && fwt === WireType.LengthDelimited) field = v.string();
        else if (fno === 2 && fwt === WireType.LengthDelimited) desc = v.string();
        else v.skip(fwt);
      }
      if (field && !(field in out)) out[field] = tidyRule(desc);
    } else {
      r.skip(wt);
    }
  }
  return out;
}

// The message reads "field: rule; field2: rule" when no detail came with it.
function parseMessage(msg: string): FieldErrors {
  const out: FieldErrors = {};
  for (const part of msg.split("; ")) {
    const m = /^([a-z_][a-z0-9_.[\]]*): (.+)$/.exec(part.trim());
    if (m && !(m[1] in out)) out[m[1]] = tidyRule(m[2]);
  }
  return out;
}

/** tidyRule turns "value length must be at least 10 characters" into "Must be at least 10 characters". */
function tidyRule(rule: string): string {
  const s = rule.replace(/^value (length )?/, "").trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** fieldErrors returns the per-field problems of an invalid_argument error, or {} for anything else. */
export function fieldErrors(err: unknown): FieldErrors {
  if (!(err instanceof ConnectError) || err.code !== Code.InvalidArgument) return {};
  for (const d of err.details) {
    if ("type" in d && d.type === badRequestType && d.value instanceof Uint8Array) {
      try {
        const out = decodeBadRequest(d.value);
        if (Object.keys(out).length) return out;
      } catch {
        // fall back to the message
      }
    }
  }
  return parseMessage(err.rawMessage);
}

/** errorMessage is a sentence about err for a toast or an error banner. */
export function errorMessage(err: unknown): string {
  if (!(err instanceof ConnectError)) {
    return err instanceof Error ? err.message : "Something went wrong.";
  }
  const raw = err.rawMessage.trim();
  switch (err.code) {
    case Code.Unavailable:
    case Code.Unknown:
      if (!err.isWireError || /fetch|network|load failed/i.test(raw)) {
        return "Can't reach SkyPanel. Check your connection and try again.";
      }
      break;
    case Code.PermissionDenied:
      return raw ? sentence(raw) : "You don't have permission to do that.";
    case Code.Unauthenticated:
      return raw ? sentence(raw) : "Please log in again.";
    case Code.DeadlineExceeded:
      return "SkyPanel took too long to answer. Try again.";
    case Code.Canceled:
      return "The request was cancelled.";
    case Code.InvalidArgument: {
      const fields = fieldErrors(err);
      const keys = Object.keys(fields);
      if (keys.length) return keys.map((k) => `${labelOf(k)}: ${fields[k].toLowerCase()}`).join(". ") + ".";
    }
  }
  return raw ? sentence(raw) : "Something went wrong.";
}

function labelOf(field: string): string {
  const s = field.replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function sentence(s: string): string {
  const t = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(t) ? t : t + ".";
}
